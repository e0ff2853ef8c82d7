"""Summary of a refinement run, with ground-truth checks where the dataset has ground truth."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from fusionfm.io import read_image
from fusionfm.metrics import psnr_reference
from fusionfm.refine.refiner import STATUS_REFINED


def refine_report(
    table: pd.DataFrame,
    manifest: pd.DataFrame,
    dataset_root: Path,
    teacher_image_path: Callable[[str, str], Path],
    labels_dir: Path,
) -> dict[str, Any]:
    """Counts, acceptance rate and composites before/after; with ground truth, the mean
    ``PSNR_gt`` of the selected labels and of the final (refined or kept) labels.

    Ground truth is read only here, after every decision was made.

    Args:
        table: the refiner's table (:data:`fusionfm.io.REFINE_SCHEMA`).
        manifest: the dataset's manifest (paths relative to ``dataset_root``).
        dataset_root: folder holding the manifest.
        teacher_image_path: ``(teacher, pair) -> path`` of a teacher's fused image.
        labels_dir: folder of the final pseudo-labels ``<pair>.png``.

    Returns:
        JSON-ready dict.
    """
    refined = table["status"] == STATUS_REFINED
    report: dict[str, Any] = {
        "pairs": int(len(table)),
        "refined": int(refined.sum()),
        "acceptance_rate": float(refined.mean()) if len(table) else 0.0,
        "mean_composite_before": _mean(table["composite_before"]),
        "mean_composite_after": _mean(table["composite_after"]),
        "diagnosed": {
            component: int(table["diagnoses"].map(lambda d, c=component: c in list(d)).sum())
            for component in sorted({c for d in table["diagnoses"] for c in d})
        },
    }
    ground_truth = manifest.set_index("pair")["path_gt"]
    rows = [row for row in table.itertuples() if isinstance(ground_truth.get(row.pair), str)]
    if rows:
        before, after = [], []
        for row in rows:
            gt = read_image(dataset_root / ground_truth[row.pair])
            before.append(psnr_reference(read_image(teacher_image_path(row.teacher, row.pair)), gt))
            after.append(psnr_reference(read_image(labels_dir / f"{row.pair}.png"), gt))
        report["ground_truth"] = {
            "selected_mean_psnr_gt": _mean(pd.Series(before)),
            "refined_mean_psnr_gt": _mean(pd.Series(after)),
        }
    return report


def _mean(values: pd.Series) -> float | None:
    finite = [float(v) for v in values if math.isfinite(float(v))]
    return math.fsum(finite) / len(finite) if finite else None
