"""Task metrics: the no-reference scores beyond the standard suite that task profiles weigh.

The standard suite (:mod:`fusionfm.metrics`) says little about three things the tasks care about,
so selection and refinement add three scores of their own. All of them compare the fused image
with its two sources only (never with a ground truth), work on the rounded BT.601 luma that the
suite scores (:func:`fusionfm.color.luma`), lie in [0, 1] and are *higher is better*:

``SAL`` - salient-intensity preservation (IVF, MIF).
    The salient region ``M`` is where the per-pixel brighter source ``R = max(A, B)``, smoothed
    by a Gaussian of :data:`SALIENCY_SIGMA` pixels, exceeds its mean by :data:`SALIENCY_K`
    standard deviations (hot targets in infrared, bone in CT, active tissue in PET/SPECT, lamps
    in a night visible image). ``SAL = sum_M min(F, R) / sum_M R``: the fraction of the salient
    intensity the fused image ``F`` keeps. 1 when ``F >= R`` on ``M`` (the brighter source itself
    scores 1); dimming the targets lowers it; brightening beyond the sources earns nothing. An
    image with no salient region (``R`` flat, or ``M`` under :data:`MIN_SALIENT_FRACTION` of the
    pixels) scores 1.
``WE`` - well-exposedness (MEF).
    The mean of Mertens et al.'s well-exposedness ``exp(-(F/255 - 0.5)^2 / (2 * 0.2^2))`` over
    all pixels (Mertens, Kautz & Van Reeth, "Exposure fusion", Pacific Graphics 2007). 1 for a
    uniformly mid-gray image, about 0.04 for a black or white one; it ignores contrast, so a
    profile pairs it with contrast and entropy.
``FOCUS`` - sharpness match to the per-pixel sharper source (MFF; detail preservation in MEF).
    ``L_X = |laplacian(X)|`` per pixel (3x3 kernel ``[[0,1,0],[1,-4,1],[0,1,0]]``, replicated
    borders); the reference is the sharper source at each pixel, ``L_R = max(L_A, L_B)``, and
    ``FOCUS = sum min(L_F, L_R) / sum max(L_F, L_R)`` (the Ruzicka similarity of the two detail
    maps). 1 when the fused image has exactly the sharper source's fine detail everywhere; blur
    (too little detail) and ringing, noise or over-sharpening (too much) both lower it. Two flat
    sources and a flat fused image give 1. Computed per pixel, without a window: on the synthetic
    multi-focus sets any smoothing of ``L`` made the choice of teacher worse.

:data:`TASK_METRICS` lists the names; :data:`TASK_METRIC_HIGHER_IS_BETTER` their direction, which
:func:`metric_higher_is_better` merges with the suite's :data:`fusionfm.metrics.HIGHER_IS_BETTER`.
"""

from __future__ import annotations

import cv2
import numpy as np

from fusionfm.config import TASKS
from fusionfm.io import InputError
from fusionfm.metrics import HIGHER_IS_BETTER
from fusionfm.metrics._common import as_gray_triple

TASK_METRICS: tuple[str, ...] = ("SAL", "WE", "FOCUS")
"""Names of the task metrics, in report order."""

TASK_METRIC_HIGHER_IS_BETTER: dict[str, bool] = {"SAL": True, "WE": True, "FOCUS": True}
"""Direction of each task metric (all three are higher-is-better scores in [0, 1])."""

SALIENCY_SIGMA = 2.0
"""Gaussian smoothing (pixels) of the brighter source before thresholding the salient region."""

SALIENCY_K = 1.0
"""The salient region is where the smoothed brighter source exceeds its mean by this many std."""

SALIENCY_DARK_FRACTION = 0.1
"""Pixels darker than this fraction of the brightest (smoothed) one are background (the black
surround of a medical slice) and are left out of the mean and std of the threshold."""

MIN_SALIENT_FRACTION = 0.002
"""Below this fraction of salient pixels, ``SAL`` is 1 (nothing salient to lose)."""

WELL_EXPOSED_SIGMA = 0.2
"""Width of Mertens et al.'s well-exposedness Gaussian on the [0, 1] scale."""


def metric_higher_is_better(name: str) -> bool:
    """Direction of any metric a profile may weigh: the standard suite or a task metric.

    Raises:
        KeyError: a name that is neither.
    """
    if name in TASK_METRIC_HIGHER_IS_BETTER:
        return TASK_METRIC_HIGHER_IS_BETTER[name]
    if name in HIGHER_IS_BETTER:
        return HIGHER_IS_BETTER[name]
    known = sorted(set(HIGHER_IS_BETTER) | set(TASK_METRIC_HIGHER_IS_BETTER))
    raise KeyError(f"unknown metric {name!r}; known: {', '.join(known)}")


def compute_task_metrics(
    fused: np.ndarray, a: np.ndarray, b: np.ndarray, task: str
) -> dict[str, float]:
    """All task metrics of one fused image, without ground truth.

    The same three metrics are computed for every task, so that the scores table does not depend
    on the selection profile (which may weigh any of them); ``task`` is validated so a
    task-specific variant can be added without changing callers.

    Args:
        fused: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale (RGB is scored on its rounded luma).
        a: source A, same ``H, W``.
        b: source B, same ``H, W``.
        task: ``ivf``, ``mif``, ``mef`` or ``mff``.

    Returns:
        ``{"SAL": ..., "WE": ..., "FOCUS": ...}``, each in [0, 1].

    Raises:
        InputError: unknown task.
        ValueError: images of different sizes, or not gray/RGB.
    """
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    f, ga, gb = as_gray_triple(fused, a, b)
    return {
        "SAL": salient_intensity_gray(f, ga, gb),
        "WE": well_exposedness_gray(f),
        "FOCUS": focus_gray(f, ga, gb),
    }


def salient_mask(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The salient region of a source pair (see ``SAL`` in the module docstring).

    Args:
        a: gray source A, float, shape ``(H, W)``, 0-255 scale.
        b: gray source B, same shape.

    Returns:
        bool array, shape ``(H, W)``; all False when the brighter source is flat.
    """
    brighter = np.maximum(a, b)
    smooth = cv2.GaussianBlur(
        brighter.astype(np.float64), (0, 0), SALIENCY_SIGMA, borderType=cv2.BORDER_REFLECT_101
    )
    scene = smooth > SALIENCY_DARK_FRACTION * float(smooth.max())
    if not scene.any():
        return np.zeros(brighter.shape, dtype=bool)
    spread = float(smooth[scene].std())
    if spread < 1e-6:
        return np.zeros(brighter.shape, dtype=bool)
    return smooth > float(smooth[scene].mean()) + SALIENCY_K * spread


def salient_intensity_gray(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``SAL`` on gray float images of one shape ``(H, W)``, 0-255 scale; in [0, 1]."""
    mask = salient_mask(a, b)
    if mask.mean() < MIN_SALIENT_FRACTION:
        return 1.0
    reference = np.maximum(a, b)[mask]
    total = float(reference.sum())
    if total <= 0.0:
        return 1.0
    return float(np.minimum(f[mask], reference).clip(min=0.0).sum() / total)


def well_exposedness_map(gray: np.ndarray) -> np.ndarray:
    """Mertens et al.'s per-pixel well-exposedness of a gray image on the 0-255 scale.

    Args:
        gray: float, shape ``(H, W)``.

    Returns:
        float64 in (0, 1], shape ``(H, W)``.
    """
    x = np.asarray(gray, dtype=np.float64) / 255.0
    return np.exp(-((x - 0.5) ** 2) / (2.0 * WELL_EXPOSED_SIGMA**2))


def well_exposedness_gray(f: np.ndarray) -> float:
    """``WE`` of a gray float image ``(H, W)``, 0-255 scale; in (0, 1]."""
    return float(well_exposedness_map(f).mean())


def laplacian_detail(gray: np.ndarray) -> np.ndarray:
    """Per-pixel fine detail ``|laplacian(gray)|`` (3x3 kernel, replicated borders).

    Args:
        gray: float, shape ``(H, W)``.

    Returns:
        float64, shape ``(H, W)``, >= 0.
    """
    gray = np.ascontiguousarray(gray, dtype=np.float64)
    return np.abs(cv2.Laplacian(gray, cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REPLICATE))


def focus_gray(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``FOCUS`` on gray float images of one shape ``(H, W)``, 0-255 scale; in [0, 1]."""
    fused = laplacian_detail(f)
    reference = np.maximum(laplacian_detail(a), laplacian_detail(b))
    union = float(np.maximum(fused, reference).sum())
    if union <= 1e-12:
        return 1.0
    return float(np.minimum(fused, reference).sum() / union)


__all__ = [
    "SALIENCY_K",
    "SALIENCY_SIGMA",
    "TASK_METRICS",
    "TASK_METRIC_HIGHER_IS_BETTER",
    "compute_task_metrics",
    "focus_gray",
    "laplacian_detail",
    "metric_higher_is_better",
    "salient_intensity_gray",
    "salient_mask",
    "well_exposedness_gray",
    "well_exposedness_map",
]
