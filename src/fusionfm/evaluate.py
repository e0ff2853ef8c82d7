"""Stage 7, evaluation: every stage's student on every task's test split, against the teachers
and the pseudo-labels, on the same metric suite.

* :func:`evaluate_model` scores one student checkpoint on the test pairs of some datasets (long
  rows of :data:`EVAL_SCHEMA`), optionally with the reference rows of the teachers and of the
  pseudo-labels;
* :func:`forgetting_matrix` / :func:`average_forgetting` summarize continual learning;
* :func:`summary_table` compares the final student with the teachers and the pseudo-labels;
* :func:`plot_forgetting` / :func:`plot_summary` draw them;
* :func:`run_evaluation` does all of it for a list of stages and writes Parquet and PNG files.

The composite is the selection's task composite (:mod:`fusionfm.pseudolabel.selection`): per
pair, each profile metric is min-max normalized across that pair's *teacher candidates*, so a
teacher's composite is in [0, 1] and the student's or the pseudo-label's
(:func:`~fusionfm.pseudolabel.selection.composite_of`, normalized with the same candidates) may
exceed 1 (better than every teacher on a metric) or drop below 0.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionfm.config import TASKS
from fusionfm.io import (
    EVAL_SCHEMA,
    MANIFEST_SCHEMA,
    InputError,
    atomic_directory,
    atomic_path,
    read_image,
    read_table,
    write_image,
    write_table,
)
from fusionfm.metrics import compute_metrics
from fusionfm.pseudolabel.selection import (
    SelectionConfig,
    composite_of,
    composite_scores,
    teacher_scores,
)
from fusionfm.pseudolabel.task_metrics import compute_task_metrics
from fusionfm.utils import parallel_map

PathLike = str | os.PathLike[str]


STUDENT = "student"
PSEUDOLABEL = "pseudolabel"
COMPOSITE = "composite"
MS_PER_IMAGE = "ms_per_image"
PARAMETERS = "parameters"
ALL_PAIRS = "*"
_TIMING_WARMUP = 1


def _rows(
    stage: str, task: str, dataset: str, pair: str, candidate: str, values: Mapping[str, float]
) -> list[dict[str, Any]]:
    return [
        {
            "stage": stage,
            "task": task,
            "dataset": dataset,
            "pair": pair,
            "candidate": candidate,
            "metric": metric,
            "value": float(value) if value is not None else math.nan,
        }
        for metric, value in values.items()
    ]


def _timed(repeats: int, fn: Any, *args: Any) -> tuple[Any, float]:
    """``fn(*args)`` and its fastest wall time in milliseconds over ``repeats`` calls."""
    best, result = math.inf, None
    for _ in range(max(1, int(repeats))):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, (time.perf_counter() - start) * 1e3)
    return result, best


def _score_job(job: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, str]) -> dict:
    fused, a, b, gt, task = job
    values = compute_metrics(fused, a, b, ground_truth=gt)
    values |= compute_task_metrics(fused, a, b, task)
    return values


def _test_pairs(dataset_dir: Path, task: str) -> pd.DataFrame:
    manifest = read_table(dataset_dir / "manifest.parquet", MANIFEST_SCHEMA)
    if len(manifest) and set(manifest["task"]) != {task}:
        raise InputError(
            f"{dataset_dir}: manifest tasks {sorted(set(manifest['task']))} do not match {task!r}"
        )
    return manifest[manifest["split"] == "test"].reset_index(drop=True)


def evaluate_model(
    model_path: PathLike | Any,
    stage: str,
    datasets: Sequence[tuple[str, PathLike, str]],
    scores: Mapping[str, pd.DataFrame],
    labels_dirs: Mapping[str, PathLike],
    steps: int = 4,
    method: str = "euler",
    selection_config: SelectionConfig | None = None,
    include_references: bool = True,
    timing_steps: Sequence[int] = (),
    workers: int = 1,
    device: str = "cpu",
    progress: bool = False,
    timing_repeats: int = 3,
    fused_dir: PathLike | None = None,
    timing_pairs: int | None = None,
) -> pd.DataFrame:
    """Score a student checkpoint (and optionally the references) on the test pairs.

    For every test pair of every dataset: the student fuses it (``steps``, ``method``), its output
    is scored with :func:`~fusionfm.metrics.compute_metrics` (with ground truth where the
    manifest has it) and :func:`~fusionfm.pseudolabel.task_metrics.compute_task_metrics`, and its
    composite is computed against that pair's teacher candidates in ``scores``. With
    ``include_references``, the teachers' rows (their scored metrics from ``scores`` and their
    composite from :func:`~fusionfm.pseudolabel.selection.composite_scores`) and the
    pseudo-label's rows (``<labels_dir>/<pair>.png`` scored like the student; pairs without a label
    have none) are added too: they do not depend on the stage, so compute them once.

    Args:
        model_path: the student checkpoint (``model.pt``), or a loaded ``FusionUNet``.
        stage: the stage name written into the ``stage`` column.
        datasets: ``(dataset_name, dataset_dir, task)``; ``dataset_dir`` holds
            ``manifest.parquet``.
        scores: dataset name -> its long scores table (``SCORES_SCHEMA``).
        labels_dirs: dataset name -> folder of the final pseudo-labels ``<pair>.png`` (only read
            with ``include_references``; a dataset missing here gets no pseudo-label rows).
        steps: solver steps of the evaluated student.
        method: ``euler`` or ``heun``.
        selection_config: the composites' profiles (default: :class:`SelectionConfig`).
        include_references: add teacher and pseudo-label rows.
        timing_steps: further step counts to time (``ms_per_image@N`` rows; outputs not scored).
        workers: processes computing metrics.
        device: torch device of the student.
        progress: show progress bars.
        timing_repeats: fusions timed per image and step count; the fastest counts (the least
            disturbed by other processes on a shared machine). At least 1.
        fused_dir: where to write the student's fusions as ``<fused_dir>/<dataset>/<pair>.png``
            (not written when ``None``).
        timing_pairs: time only the first this many test pairs of each dataset (``None``: all);
            the others are fused once and get no ``ms_per_image`` rows. Timing repeats every
            fusion and costs most of an evaluation on large images.

    Returns:
        Rows of :data:`EVAL_SCHEMA`.

    Raises:
        InputError: an unreadable checkpoint, manifest or image, a dataset without scores, or a
            manifest of another task.
    """
    import torch

    from fusionfm.fuse import fuse_images as fuse_learned
    from fusionfm.fuse import load_student

    # The forgetting matrix scores every stage on every task, those not learned yet included.
    fuse_images = functools.partial(fuse_learned, allow_untrained_task=True)
    config = selection_config or SelectionConfig()
    model = load_student(model_path, device)
    n_parameters = sum(p.numel() for p in model.parameters())
    rows: list[dict[str, Any]] = []
    warmed = False
    for dataset, dataset_dir, task in datasets:
        if task not in TASKS:
            raise InputError(f"dataset {dataset}: unknown task {task!r}")
        if dataset not in scores:
            raise InputError(f"dataset {dataset}: no scores table given")
        dataset_dir = Path(dataset_dir)
        test = _test_pairs(dataset_dir, task)
        teachers = teacher_scores(scores[dataset])
        teachers = teachers[teachers["pair"].isin(set(test["pair"]))]
        by_pair = {str(p): frame for p, frame in teachers.groupby("pair", sort=False)}
        jobs, meta = [], []
        for index, row in enumerate(test.itertuples()):
            pair = str(row.pair)
            timed_pair = timing_pairs is None or index < timing_pairs
            a, b = read_image(dataset_dir / row.path_a), read_image(dataset_dir / row.path_b)
            gt = read_image(dataset_dir / row.path_gt) if isinstance(row.path_gt, str) else None
            if not warmed:
                for _ in range(_TIMING_WARMUP):
                    fuse_images(model, a, b, task, steps, method)
                warmed = True
            with torch.inference_mode():
                fused, elapsed = _timed(
                    timing_repeats if timed_pair else 1,
                    fuse_images,
                    model,
                    a,
                    b,
                    task,
                    steps,
                    method,
                )
                timing = {MS_PER_IMAGE: elapsed} if timed_pair else {}
                for n in timing_steps if timed_pair else ():
                    timing[f"{MS_PER_IMAGE}@{n}"] = (
                        elapsed
                        if n == steps
                        else _timed(timing_repeats, fuse_images, model, a, b, task, n, method)[1]
                    )
            if fused_dir is not None:
                write_image(Path(fused_dir) / dataset / f"{pair}.png", fused)
            jobs.append((fused, a, b, gt, task))
            meta.append((pair, STUDENT, timing))
            if include_references and dataset in labels_dirs:
                label_path = Path(labels_dirs[dataset]) / f"{pair}.png"
                if label_path.is_file():
                    jobs.append((read_image(label_path), a, b, gt, task))
                    meta.append((pair, PSEUDOLABEL, {}))
        results = parallel_map(
            _score_job, jobs, workers, f"evaluate {stage} {dataset}", "image", progress
        )
        for (pair, candidate, extra), values in zip(meta, results, strict=True):
            candidates = by_pair.get(pair)
            composite = (
                composite_of(values, candidates, task, config)
                if candidates is not None and len(candidates)
                else math.nan
            )
            values = {**values, COMPOSITE: composite, **extra}
            rows.extend(_rows(stage, task, dataset, pair, candidate, values))
        rows.extend(
            _rows(stage, task, dataset, ALL_PAIRS, STUDENT, {PARAMETERS: float(n_parameters)})
        )
        if include_references and len(teachers):
            for teacher_row in teachers.itertuples():
                rows.extend(
                    _rows(
                        stage,
                        task,
                        dataset,
                        str(teacher_row.pair),
                        str(teacher_row.candidate),
                        {str(teacher_row.metric): teacher_row.value},
                    )
                )
            comps = composite_scores(teachers, task, config)
            for comp in comps.itertuples():
                rows.extend(
                    _rows(
                        stage,
                        task,
                        dataset,
                        str(comp.pair),
                        str(comp.candidate),
                        {COMPOSITE: comp.composite},
                    )
                )
    return pd.DataFrame(rows, columns=EVAL_SCHEMA.names).astype({"value": np.float64})


def _student_composites(eval_table: pd.DataFrame) -> pd.DataFrame:
    return eval_table[(eval_table["candidate"] == STUDENT) & (eval_table["metric"] == COMPOSITE)]


def forgetting_matrix(
    eval_table: pd.DataFrame,
    stage_order: Sequence[str],
    task_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean student composite on each task's test split after each stage.

    Args:
        eval_table: rows of :data:`EVAL_SCHEMA` (student ``composite`` rows are used; the pairs of
            all datasets of a task are pooled).
        stage_order: the stages, in training order (the matrix rows).
        task_order: the columns (default: tasks in :data:`fusionfm.config.TASKS` order that have
            rows).

    Returns:
        Frame indexed by ``stage`` (in ``stage_order``), one column per task; NaN where a stage
        was not evaluated on a task.
    """
    student = _student_composites(eval_table)
    means = student.groupby(["stage", "task"])["value"].mean().unstack("task")
    if task_order is None:
        task_order = [t for t in TASKS if t in set(student["task"])]
        task_order += sorted(set(student["task"]) - set(task_order))
    matrix = means.reindex(index=list(stage_order), columns=list(task_order))
    matrix.index.name = "stage"
    matrix.columns.name = "task"
    return matrix.astype(np.float64)


def average_forgetting(
    matrix: pd.DataFrame, task_order: Sequence[str], stage_order: Sequence[str] | None = None
) -> float:
    """Average forgetting of a continual run.

    With tasks ``t_1 .. t_T`` learned in that order, ``s_j`` the stage that learned ``t_j`` and
    ``M[s, t]`` the student's mean composite on ``t``'s test split after stage ``s``::

        F = 1 / (T - 1) * sum_{j=1}^{T-1} (M[s_j, t_j] - M[s_T, t_j])

    i.e. the mean, over every task but the last, of the drop of its composite from right after it
    was learned to after the last stage. Positive means forgotten; negative means later tasks
    improved it (backward transfer).

    Args:
        matrix: from :func:`forgetting_matrix`.
        task_order: the tasks in training order.
        stage_order: the stage that learned each task, aligned with ``task_order`` (default: the
            matrix rows in order).

    Returns:
        F; NaN with fewer than two tasks or where a needed entry is NaN.

    Raises:
        ValueError: ``stage_order`` and ``task_order`` differ in length, or a stage or task is not
            in the matrix.
    """
    stages = list(matrix.index if stage_order is None else stage_order)
    tasks = list(task_order)
    if len(stages) != len(tasks):
        raise ValueError(
            f"average_forgetting: {len(tasks)} tasks but {len(stages)} stages ({stages}); give "
            "the stage that learned each task"
        )
    missing = [s for s in stages if s not in matrix.index] + [
        t for t in tasks if t not in matrix.columns
    ]
    if missing:
        raise ValueError(f"average_forgetting: not in the matrix: {missing}")
    if len(tasks) < 2:
        return math.nan
    last = stages[-1]
    drops = [
        float(matrix.at[stages[j], tasks[j]]) - float(matrix.at[last, tasks[j]])
        for j in range(len(tasks) - 1)
    ]
    return float(np.mean(drops))


def _mean_by(frame: pd.DataFrame, metric: str) -> pd.Series:
    rows = frame[frame["metric"] == metric]
    return rows.groupby("candidate")["value"].mean()


def summary_table(
    eval_table: pd.DataFrame, final_stage: str, ranking: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The final student against the teachers and the pseudo-labels, per task.

    Means are over the task's test pairs (all its datasets pooled). The teacher and pseudo-label
    rows are taken from whichever stage computed them.

    Returns:
        One row per task (in :data:`fusionfm.config.TASKS` order): ``task``, ``n_pairs``,
        ``student_composite``, ``teacher_mean_composite`` (mean over the teachers of each
        teacher's mean composite), ``best_teacher`` and ``best_teacher_composite`` (highest mean
        composite), ``pseudolabel_composite``, ``student_minus_teacher_mean``,
        ``student_PSNR_gt``/``student_SSIM_gt``, ``best_teacher_PSNR_gt``,
        ``pseudolabel_PSNR_gt`` (NaN without ground truth), ``ms_per_image`` and ``parameters``
        of the student, and the verdict of the field's table
        (:func:`fusionfm.metric_table.metric_table`, all the task's test pairs):
        ``student_mean_rank``, ``student_position`` among ``ranked_candidates``, and
        ``best_by_mean_rank`` (the first of the others by mean rank); ``ranking`` is that table
        when the caller has it already.
    """
    from fusionfm.metric_table import ALL_DATASETS, metric_table  # it builds on this module

    if ranking is None:
        ranking = metric_table(eval_table, final_stage)
    ranking = ranking[(ranking["dataset"] == ALL_DATASETS) & (ranking["role"] != PSEUDOLABEL)]
    student = eval_table[
        (eval_table["candidate"] == STUDENT) & (eval_table["stage"] == final_stage)
    ]
    refs = eval_table[eval_table["candidate"] != STUDENT].drop_duplicates(
        ["task", "dataset", "pair", "candidate", "metric"]
    )
    rows = []
    tasks = [t for t in TASKS if t in set(student["task"])]
    for task in tasks:
        s = student[student["task"] == task]
        r = refs[refs["task"] == task]
        teachers = r[r["candidate"] != PSEUDOLABEL]
        label = r[r["candidate"] == PSEUDOLABEL]
        teacher_comp = _mean_by(teachers, COMPOSITE)
        teacher_psnr = _mean_by(teachers, "PSNR_gt")
        best = str(teacher_comp.idxmax()) if teacher_comp.notna().any() else None

        def mean(frame: pd.DataFrame, metric: str) -> float:
            values = frame.loc[frame["metric"] == metric, "value"]
            return float(values.mean()) if len(values) else math.nan

        student_comp = mean(s, COMPOSITE)
        teacher_mean = float(teacher_comp.mean()) if len(teacher_comp) else math.nan
        rows.append(
            {
                "task": task,
                "n_pairs": int((s["metric"] == COMPOSITE).sum()),
                "student_composite": student_comp,
                "teacher_mean_composite": teacher_mean,
                "best_teacher": best,
                "best_teacher_composite": float(teacher_comp[best]) if best else math.nan,
                "pseudolabel_composite": mean(label, COMPOSITE),
                "student_minus_teacher_mean": student_comp - teacher_mean,
                "student_PSNR_gt": mean(s, "PSNR_gt"),
                "student_SSIM_gt": mean(s, "SSIM_gt"),
                "best_teacher_PSNR_gt": float(teacher_psnr.get(best, math.nan))
                if best
                else math.nan,
                "pseudolabel_PSNR_gt": mean(label, "PSNR_gt"),
                "ms_per_image": mean(s, MS_PER_IMAGE),
                "parameters": mean(s, PARAMETERS),
                **_rank_columns(ranking[ranking["task"] == task]),
            }
        )
    return pd.DataFrame(rows)


def _rank_columns(ranked: pd.DataFrame) -> dict[str, Any]:
    """The summary's mean-rank columns from one task's ranked rows of the metric table."""
    student = ranked[ranked["candidate"] == STUDENT]
    others = ranked[ranked["candidate"] != STUDENT].sort_values("mean_rank")
    return {
        "student_mean_rank": float(student["mean_rank"].iloc[0]) if len(student) else math.nan,
        "student_position": float(student["position"].iloc[0]) if len(student) else math.nan,
        "ranked_candidates": len(ranked),
        "best_by_mean_rank": str(others["candidate"].iloc[0]) if len(others) else None,
    }


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_forgetting(matrix: pd.DataFrame, path: PathLike) -> Path:
    """Heatmap of the forgetting matrix (stages down, tasks across, values annotated), as PNG."""
    plt = _pyplot()
    path = Path(path)
    values = matrix.to_numpy(dtype=np.float64)
    fig, ax = plt.subplots(
        figsize=(1.2 + 1.1 * max(1, values.shape[1]), 1.0 + 0.6 * max(1, values.shape[0]))
    )
    try:
        image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", aspect="auto")
        ax.set_xticks(range(values.shape[1]), [str(c) for c in matrix.columns])
        ax.set_yticks(range(values.shape[0]), [str(i) for i in matrix.index])
        ax.set_xlabel("evaluated task")
        ax.set_ylabel("after stage")
        ax.set_title("student composite (test split)")
        finite = values[np.isfinite(values)]
        middle = float(finite.mean()) if finite.size else 0.0
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                v = values[i, j]
                if np.isfinite(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.3f}",
                        ha="center",
                        va="center",
                        color="black" if v > middle else "white",
                        fontsize=8,
                    )
        fig.colorbar(image, ax=ax)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
    finally:
        plt.close(fig)
    return path


def plot_summary(summary: pd.DataFrame, path: PathLike) -> Path:
    """Grouped bars per task: student, mean teacher, best teacher and pseudo-label composites."""
    plt = _pyplot()
    path = Path(path)
    series = [
        ("student_composite", "student"),
        ("teacher_mean_composite", "teachers (mean)"),
        ("best_teacher_composite", "best teacher"),
        ("pseudolabel_composite", "pseudo-label"),
    ]
    tasks = [str(t) for t in summary["task"]] if len(summary) else []
    x = np.arange(len(tasks))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * max(1, len(tasks)), 3.6))
    try:
        for k, (column, label) in enumerate(series):
            values = summary[column].to_numpy(dtype=np.float64) if column in summary else []
            ax.bar(
                x + (k - (len(series) - 1) / 2) * width, np.nan_to_num(values), width, label=label
            )
        ax.set_xticks(x, tasks)
        ax.set_ylabel("task composite")
        ax.set_title("final student vs. teachers and pseudo-labels (test split)")
        ax.axhline(0.0, color="gray", linewidth=0.5)
        ax.legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
    finally:
        plt.close(fig)
    return path


def run_evaluation(
    stages: Sequence[tuple[str, PathLike, str]],
    datasets: Sequence[tuple[str, PathLike, str]],
    scores: Mapping[str, pd.DataFrame],
    labels_dirs: Mapping[str, PathLike],
    out_dir: PathLike,
    steps: int = 4,
    method: str = "euler",
    selection_config: SelectionConfig | None = None,
    timing_steps: Sequence[int] = (),
    workers: int = 1,
    device: str = "cpu",
    progress: bool = False,
    timed: bool = True,
    timing_pairs: int | None = None,
) -> dict[str, Any]:
    """Evaluate every stage and write the tables and figures.

    Args:
        stages: ``(stage, model_path, task)`` in training order (``task`` is the task the stage
            learned); the last is the final model.
        datasets, scores, labels_dirs, steps, method, selection_config, timing_steps, workers,
            device, progress: as :func:`evaluate_model` (references are computed with the final
            stage; step counts are timed for the final stage only).
        timed: time the final model: the fastest of 3 fusions per image, and every step count
            of ``timing_steps``. ``False`` (an ablation, whose architecture the main variant
            already timed): every fusion runs once, its time recorded as it came.
        timing_pairs: test pairs per dataset timed (see :func:`evaluate_model`; ``None``: all).
        out_dir: gets ``eval.parquet`` (:data:`EVAL_SCHEMA`), ``forgetting.parquet``,
            ``summary.parquet``, ``metric_table.parquet`` (:func:`fusionfm.metric_table.metric_table`), ``forgetting.png``, ``summary.png`` and ``fused/`` (the final
            model's fusions, ``<dataset>/<pair>.png``).

    Returns:
        dict with ``eval``, ``forgetting`` (matrix), ``summary``, ``metric_table``,
        ``average_forgetting``.
    """
    if not stages:
        raise InputError("run_evaluation: no stages given")
    out_dir = Path(out_dir)
    frames = []
    for k, (stage, model_path, _) in enumerate(stages):
        final = k == len(stages) - 1
        timed_here = final and timed  # earlier stages' timings are not reported
        with atomic_directory(out_dir / "fused") if final else nullcontext() as fused_dir:
            frames.append(
                evaluate_model(
                    model_path,
                    stage,
                    datasets,
                    scores,
                    labels_dirs,
                    steps,
                    method,
                    selection_config,
                    include_references=final,
                    timing_steps=timing_steps if timed_here else (),
                    timing_repeats=3 if timed_here else 1,
                    workers=workers,
                    device=device,
                    progress=progress,
                    fused_dir=fused_dir,
                    timing_pairs=timing_pairs,
                )
            )
    table = pd.concat(frames, ignore_index=True)
    stage_names = [s for s, _, _ in stages]
    task_order = [t for _, _, t in stages]
    matrix = forgetting_matrix(table, stage_names)
    forgetting = (
        average_forgetting(matrix, task_order, stage_names)
        if set(task_order) <= set(matrix.columns)
        else math.nan
    )
    from fusionfm.metric_table import metric_table  # it builds on this module

    ranking = metric_table(table, stage_names[-1])
    summary = summary_table(table, stage_names[-1], ranking)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir / "eval.parquet", table, EVAL_SCHEMA)
    with atomic_path(out_dir / "metric_table.parquet") as tmp:
        ranking.to_parquet(tmp, index=False)
    with atomic_path(out_dir / "forgetting.parquet") as tmp:
        matrix.reset_index().to_parquet(tmp, index=False)
    with atomic_path(out_dir / "summary.parquet") as tmp:
        summary.to_parquet(tmp, index=False)
    plot_forgetting(matrix, out_dir / "forgetting.png")
    plot_summary(summary, out_dir / "summary.png")
    return {
        "eval": table,
        "forgetting": matrix,
        "summary": summary,
        "metric_table": ranking,
        "average_forgetting": forgetting,
    }


__all__ = [
    "EVAL_SCHEMA",
    "average_forgetting",
    "evaluate_model",
    "forgetting_matrix",
    "plot_forgetting",
    "plot_summary",
    "run_evaluation",
    "summary_table",
]
