"""Teachers ("priors"): fusion methods whose outputs become candidate pseudo-labels.

Importing this package registers the built-in classical methods (:mod:`.classical`,
:mod:`.multiscale`, :mod:`.decision`); other teacher kinds register into the same
:mod:`.registry`. The pipeline calls :func:`run_teacher`.
"""

from fusionfm.teacher import classical as _classical  # noqa: F401  (registers the built-ins)
from fusionfm.teacher.color import fuse_color
from fusionfm.teacher.registry import (
    Teacher,
    all_teachers,
    builtin_teachers,
    get_teacher,
    register,
    run_teacher,
    signature_defaults,
)

__all__ = [
    "Teacher",
    "all_teachers",
    "builtin_teachers",
    "fuse_color",
    "get_teacher",
    "register",
    "run_teacher",
    "signature_defaults",
]
