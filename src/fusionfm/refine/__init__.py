"""The Fusion Refiner: diagnose, decompose and enhance selected pseudo-labels (DESIGN.md stage 5)."""

from fusionfm.refine.diagnose import COMPONENTS, Diagnosis
from fusionfm.refine.refiner import (
    DEFAULT_OPERATIONS,
    STATUS_KEPT,
    STATUS_REFINED,
    Attempt,
    RefinerConfig,
    RefineResult,
    refine_dataset,
    refine_pair,
)

__all__ = [
    "COMPONENTS",
    "DEFAULT_OPERATIONS",
    "STATUS_KEPT",
    "STATUS_REFINED",
    "Attempt",
    "Diagnosis",
    "RefineResult",
    "RefinerConfig",
    "refine_dataset",
    "refine_pair",
]
