"""Stage 3, scores: every teacher output of a dataset on the full metric suite (long form)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from fusionfm.io import (
    MANIFEST_SCHEMA,
    SCORES_SCHEMA,
    InputError,
    read_image,
    read_table,
    write_table,
)
from fusionfm.metrics import compute_metrics_many
from fusionfm.metrics._common import as_gray
from fusionfm.metrics.statistics import (
    average_gradient_gray,
    entropy_gray,
    spatial_frequency_gray,
    standard_deviation_gray,
)
from fusionfm.utils import parallel_map

SOURCE_STATISTICS = {
    "EN": entropy_gray,
    "SD": standard_deviation_gray,
    "SF": spatial_frequency_gray,
    "AG": average_gradient_gray,
}
"""Single-image statistics recorded for each source (role ``source``)."""


def score_pair(
    task: str,
    pair: str,
    sources: Mapping[str, Path],
    ground_truth: Path | None,
    candidates: Mapping[str, Path],
) -> list[dict]:
    """Score every candidate fusion of one pair, and the sources' own statistics.

    Args:
        task: the dataset's task (selects the task metrics).
        pair: pair id.
        sources: modality name -> image path, A then B.
        ground_truth: reference image, or None.
        candidates: teacher name -> fused image path.

    Returns:
        Rows of :data:`fusionfm.io.SCORES_SCHEMA`.
    """
    from fusionfm.pseudolabel.task_metrics import compute_task_metrics

    (name_a, path_a), (name_b, path_b) = sources.items()
    a, b = read_image(path_a), read_image(path_b)
    gt = read_image(ground_truth) if ground_truth is not None else None
    rows = []
    for modality, image in ((name_a, a), (name_b, b)):
        gray = as_gray(image, str(sources[modality]))
        for metric, statistic in SOURCE_STATISTICS.items():
            rows.append(_row(pair, "source", modality, metric, statistic(gray)))
    fused_images = {}
    for teacher, path in candidates.items():
        fused = read_image(path)
        if fused.shape[:2] != a.shape[:2]:
            raise InputError(
                f"{path}: fused image is {fused.shape[1]}x{fused.shape[0]}, "
                f"the sources are {a.shape[1]}x{a.shape[0]}"
            )
        fused_images[teacher] = fused
    # one call for all candidates: the sources' own terms are computed once per pair
    suites = compute_metrics_many(list(fused_images.values()), a, b, ground_truth=gt)
    for (teacher, fused), values in zip(fused_images.items(), suites, strict=True):
        values |= compute_task_metrics(fused, a, b, task)
        rows.extend(
            _row(pair, "teacher", teacher, metric, value) for metric, value in values.items()
        )
    return rows


def _row(pair: str, role: str, candidate: str, metric: str, value: float) -> dict:
    return {
        "pair": pair,
        "role": role,
        "candidate": candidate,
        "metric": metric,
        "value": float(value),
    }


def _score_pair_job(job: tuple) -> list[dict]:
    return score_pair(*job)


def score_dataset(
    dataset_dir: str | os.PathLike[str],
    task: str,
    teacher_images: Mapping[str, str | os.PathLike[str]],
    out_table: str | os.PathLike[str],
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every teacher's output on every pair of a dataset into one long table.

    A pair a teacher skipped (no image in its folder) simply has no rows for that teacher.

    Args:
        dataset_dir: folder holding the dataset's ``manifest.parquet``.
        task: the dataset's task.
        teacher_images: teacher name -> folder of ``<pair>.png``.
        out_table: Parquet file to write (:data:`fusionfm.io.SCORES_SCHEMA`).
        workers: processes scoring pairs in parallel.
        progress: show a progress bar.

    Returns:
        The table written.
    """
    dataset_dir = Path(dataset_dir)
    manifest = read_table(dataset_dir / "manifest.parquet", MANIFEST_SCHEMA)
    jobs = []
    for row in manifest.itertuples():
        candidates = {
            teacher: Path(folder) / f"{row.pair}.png"
            for teacher, folder in teacher_images.items()
            if (Path(folder) / f"{row.pair}.png").is_file()
        }
        sources = {
            row.modality_a: dataset_dir / row.path_a,
            row.modality_b: dataset_dir / row.path_b,
        }
        ground_truth = dataset_dir / row.path_gt if isinstance(row.path_gt, str) else None
        jobs.append((task, row.pair, sources, ground_truth, candidates))
    results = parallel_map(
        _score_pair_job, jobs, workers, f"scoring {dataset_dir.name}", "pair", progress
    )
    table = pd.DataFrame([row for rows in results for row in rows], columns=SCORES_SCHEMA.names)
    write_table(out_table, table, SCORES_SCHEMA)
    return table
