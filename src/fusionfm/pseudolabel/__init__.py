"""Pseudo-labels: task metrics and the task-aware selection of one teacher output per pair."""

from fusionfm.io import REFINE_SCHEMA, SELECTION_SCHEMA
from fusionfm.pseudolabel.selection import (
    DEFAULT_PROFILES,
    SelectionConfig,
    composite_of,
    composite_scores,
    normalized_values,
    select_pseudolabels,
    selection_report,
)
from fusionfm.pseudolabel.task_metrics import (
    TASK_METRICS,
    compute_task_metrics,
    metric_higher_is_better,
)

__all__ = [
    "DEFAULT_PROFILES",
    "REFINE_SCHEMA",
    "SELECTION_SCHEMA",
    "TASK_METRICS",
    "SelectionConfig",
    "composite_of",
    "composite_scores",
    "compute_task_metrics",
    "metric_higher_is_better",
    "normalized_values",
    "select_pseudolabels",
    "selection_report",
]
