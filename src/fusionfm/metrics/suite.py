"""The whole metric suite on one triple, and on folders of triples."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from fusionfm.io import InputError, image_files_by_stem, read_image
from fusionfm.metrics._common import as_gray, check_triple_size
from fusionfm.metrics.information import mutual_information_gray
from fusionfm.metrics.qabf import prepare_qabf_sources, qabf_gray
from fusionfm.metrics.similarity import (
    correlation_coefficient_gray,
    mean_squared_error_gray,
    peak_signal_to_noise_ratio_gray,
    psnr_reference_gray,
    sum_of_correlation_differences_gray,
)
from fusionfm.metrics.ssim import (
    FUSION_WINDOW,
    REFERENCE_WINDOW,
    prepare_ssim_reference,
    prepare_ssim_sources,
    ssim_fusion_gray,
    ssim_reference_gray,
)
from fusionfm.metrics.statistics import (
    average_gradient_gray,
    entropy_gray,
    spatial_frequency_gray,
    standard_deviation_gray,
)
from fusionfm.metrics.vif import prepare_vif_sources, vif_gray

GrayMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

NO_REFERENCE_METRICS: dict[str, GrayMetric] = {
    "EN": lambda f, a, b: entropy_gray(f),
    "SD": lambda f, a, b: standard_deviation_gray(f),
    "SF": lambda f, a, b: spatial_frequency_gray(f),
    "AG": lambda f, a, b: average_gradient_gray(f),
    "MI": mutual_information_gray,
    "SCD": sum_of_correlation_differences_gray,
    "VIF": vif_gray,
    "Qabf": qabf_gray,
    "SSIM": ssim_fusion_gray,
    "CC": correlation_coefficient_gray,
    "MSE": mean_squared_error_gray,
    "PSNR": peak_signal_to_noise_ratio_gray,
}
"""Metric name -> kernel on validated gray float64 images ``(f, a, b)``, in report order."""

GROUND_TRUTH_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "PSNR_gt": psnr_reference_gray,
    "SSIM_gt": ssim_reference_gray,
}
"""Metric name -> kernel on ``(f, gt)``; computed only where a ground truth exists."""

METRIC_NAMES: tuple[str, ...] = tuple(NO_REFERENCE_METRICS)
HIGHER_IS_BETTER: dict[str, bool] = {name: name != "MSE" for name in METRIC_NAMES} | {
    "PSNR_gt": True,
    "SSIM_gt": True,
}


def compute_metrics(
    fused: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    ground_truth: np.ndarray | None = None,
    metrics: tuple[str, ...] | None = None,
) -> dict[str, float]:
    """Score one fused image against its sources (and ground truth, when given).

    Args:
        fused, a, b: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale, same size; RGB is scored on
            its rounded luma.
        ground_truth: optional reference of the same size; adds ``PSNR_gt`` and ``SSIM_gt``.
        metrics: subset of names to compute (default: all).

    Returns:
        Metric name -> value, in the order of :data:`METRIC_NAMES` then the ground-truth ones.
    """
    return compute_metrics_many([fused], a, b, ground_truth, metrics)[0]


def compute_metrics_many(
    fused_images: Sequence[np.ndarray],
    a: np.ndarray,
    b: np.ndarray,
    ground_truth: np.ndarray | None = None,
    metrics: tuple[str, ...] | None = None,
) -> list[dict[str, float]]:
    """Score several fused images of one source pair, e.g. every teacher's output.

    The same values as :func:`compute_metrics` on each image; what depends on the sources (or
    the ground truth) alone is computed once: their gray levels, VIF's reference pyramids,
    local means and variances, Qabf's source gradients, the SSIM local means.

    Args:
        fused_images: images of the sources' height and width, ``(H, W)`` or ``(H, W, 3)``.
        a, b, ground_truth, metrics: as for :func:`compute_metrics`.

    Returns:
        One ``name -> value`` dict per fused image, in order.
    """
    wanted = metrics or METRIC_NAMES + tuple(GROUND_TRUTH_METRICS)
    unknown = set(wanted) - set(NO_REFERENCE_METRICS) - set(GROUND_TRUTH_METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; known: {list(HIGHER_IS_BETTER)}")
    grays = [as_gray(f, "fused") for f in fused_images]
    ga, gb = as_gray(a, "source A"), as_gray(b, "source B")
    for f in grays:
        check_triple_size(f, ga, gb)
    for name, window in (("SSIM", FUSION_WINDOW), ("SSIM_gt", REFERENCE_WINDOW)):
        if (
            name in wanted
            and min(ga.shape) < window
            and (name == "SSIM" or ground_truth is not None)
        ):
            raise InputError(
                f"images of {ga.shape[1]}x{ga.shape[0]} pixels are smaller than {name}'s "
                f"{window}x{window} window, so {name} is undefined for them; leave it out "
                "(metrics=...) or score larger images"
            )
    kernels: dict[str, GrayMetric] = {
        name: fn for name, fn in NO_REFERENCE_METRICS.items() if name in wanted
    }
    if grays and "VIF" in kernels:
        kernels["VIF"] = partial(vif_gray, sources=prepare_vif_sources(ga, gb))
    if grays and "Qabf" in kernels:
        kernels["Qabf"] = partial(qabf_gray, sources=prepare_qabf_sources(ga, gb))
    if grays and "SSIM" in kernels:
        kernels["SSIM"] = partial(ssim_fusion_gray, sources=prepare_ssim_sources(ga, gb))
    scores = [{name: fn(f, ga, gb) for name, fn in kernels.items()} for f in grays]
    if ground_truth is not None:
        gt = as_gray(ground_truth, "ground truth")
        truth_kernels = {n: fn for n, fn in GROUND_TRUTH_METRICS.items() if n in wanted}
        if grays and "SSIM_gt" in truth_kernels:
            reference = prepare_ssim_reference(gt)
            truth_kernels["SSIM_gt"] = partial(ssim_reference_gray, reference=reference)
        for f, values in zip(grays, scores, strict=True):
            if f.shape != gt.shape:
                raise ValueError(
                    f"fused ({f.shape[1]}x{f.shape[0]}) and ground truth "
                    f"({gt.shape[1]}x{gt.shape[0]}) differ in size"
                )
            values |= {name: fn(f, gt) for name, fn in truth_kernels.items()}
    return scores


def json_ready(scores: Mapping[str, float]) -> dict[str, float | None]:
    """Replace NaN and infinities by None so the scores serialize as strict JSON."""
    return {k: (float(v) if math.isfinite(v) else None) for k, v in scores.items()}


def _score_files(paths: tuple[str, str, str, str | None]) -> dict[str, float]:
    fused_path, a_path, b_path, gt_path = paths
    fused, a, b = read_image(fused_path), read_image(a_path), read_image(b_path)
    shapes = {p: img.shape[:2] for p, img in ((fused_path, fused), (a_path, a), (b_path, b))}
    if len(set(shapes.values())) != 1:
        listed = ", ".join(f"{p} ({w}x{h})" for p, (h, w) in shapes.items())
        raise InputError(f"images of one triple differ in size: {listed}")
    gt = read_image(gt_path) if gt_path else None
    if gt is not None and gt.shape[:2] != fused.shape[:2]:
        raise InputError(
            f"{gt_path}: ground truth is {gt.shape[1]}x{gt.shape[0]}, "
            f"{fused_path} is {fused.shape[1]}x{fused.shape[0]}"
        )
    return compute_metrics(fused, a, b, gt)


def score_files(
    fused: str | Path, a: str | Path, b: str | Path, ground_truth: str | Path | None = None
) -> dict[str, float]:
    """Read a triple of image files (and a ground truth) and score it.

    Raises:
        fusionfm.io.InputError: unreadable images or images of different sizes.
    """
    return _score_files((str(fused), str(a), str(b), str(ground_truth) if ground_truth else None))


def score_folders(
    fused_dir: str | Path,
    a_dir: str | Path,
    b_dir: str | Path,
    gt_dir: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every fused image of a folder against its sources, matched by file stem.

    Returns:
        One row per pair: ``pair`` then one column per metric.

    Raises:
        fusionfm.io.InputError: empty folder, a fused image with no source counterpart.
    """
    from fusionfm.utils import parallel_map

    fused_files = image_files_by_stem(fused_dir)
    if not fused_files:
        raise InputError(f"{fused_dir}: no images found")
    sources = [image_files_by_stem(d) for d in (a_dir, b_dir)]
    ground_truths = image_files_by_stem(gt_dir) if gt_dir else {}
    jobs = []
    for stem, fused_path in fused_files.items():
        for folder, files in zip((a_dir, b_dir), sources, strict=True):
            if stem not in files:
                raise InputError(f"{fused_path}: no source image named {stem}.* in {folder}")
        jobs.append(
            (
                str(fused_path),
                str(sources[0][stem]),
                str(sources[1][stem]),
                str(ground_truths[stem]) if stem in ground_truths else None,
            )
        )
    rows = parallel_map(_score_files, jobs, workers, "scoring", "image", progress)
    frame = pd.DataFrame(rows)
    frame.insert(0, "pair", list(fused_files))
    return frame


__all__ = [
    "GROUND_TRUTH_METRICS",
    "HIGHER_IS_BETTER",
    "METRIC_NAMES",
    "NO_REFERENCE_METRICS",
    "compute_metrics",
    "compute_metrics_many",
    "json_ready",
    "score_files",
    "score_folders",
]
