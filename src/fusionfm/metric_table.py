"""The table fusion papers report: per task and dataset, every method's mean of the standard
metrics over the test pairs, and its mean rank over the eight ranked ones.

Columns EN, SD, SF, MI, SCD, VIF, Qabf, SSIM (ranked; higher is better for each), plus AG and CC
(shown, not ranked). For each scope (one dataset, or ``*``: every test pair of the task) the
ranked candidates are the final student and every teacher that fused every test pair of the
scope (a precomputed method that lacks a pair is left out there); per metric they are ranked by
their mean (1 = best, ties share the average rank, a NaN mean ranks last), and their mean rank
over the eight metrics orders them (``position``, 1 = best). The pseudo-labels are shown with
their means for reference but not ranked: they are what the student learned from, not a method.

The selection's composite is kept beside it (``composite``): it is the pipeline's internal tool
for choosing pseudo-labels, not the verdict.
"""

from __future__ import annotations

import math

import pandas as pd

from fusionfm.config import TASKS
from fusionfm.evaluate import ALL_PAIRS, PSEUDOLABEL, STUDENT

RANKED_METRICS: tuple[str, ...] = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")
"""The eight metrics of the mean rank, in the order fusion papers print them."""

SHOWN_METRICS: tuple[str, ...] = (*RANKED_METRICS, "AG", "CC")
"""Every metric column of the table."""

ALL_DATASETS = "*"
"""The ``dataset`` of a task's row over all its test pairs."""

TEACHER = "teacher"
"""The ``role`` of a teacher's rows; the student's and the pseudo-labels' role is their candidate
name (:data:`fusionfm.evaluate.STUDENT`, :data:`~fusionfm.evaluate.PSEUDOLABEL`)."""

COLUMNS: tuple[str, ...] = (
    "task",
    "dataset",
    "candidate",
    "role",
    "pairs",
    *SHOWN_METRICS,
    "composite",
    "mean_rank",
    "position",
    "ranked",
)
"""Columns of :func:`metric_table`; ``position`` is the place by mean rank among ``ranked``
candidates (NaN for the pseudo-labels)."""


def metric_table(eval_table: pd.DataFrame, final_stage: str) -> pd.DataFrame:
    """The field's metric table of the final student, its teachers and its pseudo-labels.

    Args:
        eval_table: rows of :data:`fusionfm.evaluate.EVAL_SCHEMA` (long form: stage, task,
            dataset, pair, candidate, metric, value); teacher and pseudo-label rows may come from
            any stage.
        final_stage: the stage whose student is ranked.

    Returns:
        One row per (task, dataset, candidate), tasks in :data:`~fusionfm.config.TASKS` order,
        each task's ``*`` rows first, then its datasets; within a scope the ranked candidates by
        position, the pseudo-labels last. Columns :data:`COLUMNS`.
    """
    per_pair = eval_table[eval_table["pair"] != ALL_PAIRS]
    student = per_pair[(per_pair["candidate"] == STUDENT) & (per_pair["stage"] == final_stage)]
    references = per_pair[per_pair["candidate"] != STUDENT].drop_duplicates(
        ["task", "dataset", "pair", "candidate", "metric"]
    )
    rows = pd.concat([student, references], ignore_index=True)
    frames = []
    for task in [t for t in TASKS if t in set(student["task"])]:
        of_task = rows[rows["task"] == task]
        datasets = sorted(set(of_task.loc[of_task["candidate"] == STUDENT, "dataset"]))
        for dataset in [ALL_DATASETS, *datasets]:
            scope = of_task if dataset == ALL_DATASETS else of_task[of_task["dataset"] == dataset]
            frames.append(_scope_table(scope, task, dataset))
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(COLUMNS)]


def _scope_table(rows: pd.DataFrame, task: str, dataset: str) -> pd.DataFrame:
    """The table of one scope (its rows: every candidate's per-pair metric rows)."""
    keys = ["dataset", "pair"]
    test_pairs = set(
        map(tuple, rows.loc[rows["candidate"] == STUDENT, keys].drop_duplicates().values)
    )
    entries = []
    for candidate, own in rows.groupby("candidate", sort=True):
        covered = set(map(tuple, own[keys].drop_duplicates().values)) & test_pairs
        if candidate != PSEUDOLABEL and covered != test_pairs:
            continue  # did not fuse every test pair of this scope: not comparable
        own = own[[tuple(k) in test_pairs for k in own[keys].values]]
        means = own.groupby("metric")["value"].mean()
        role = {STUDENT: STUDENT, PSEUDOLABEL: PSEUDOLABEL}.get(str(candidate), TEACHER)
        entries.append(
            {
                "task": task,
                "dataset": dataset,
                "candidate": str(candidate),
                "role": role,
                "pairs": len(covered),
                **{m: float(means.get(m, math.nan)) for m in (*SHOWN_METRICS, "composite")},
            }
        )
    table = pd.DataFrame(entries)
    ranked = table["role"] != PSEUDOLABEL
    ranks = table.loc[ranked, list(RANKED_METRICS)].rank(
        ascending=False, method="average", na_option="bottom"
    )
    table["mean_rank"] = ranks.mean(axis=1)
    table["position"] = table.loc[ranked, "mean_rank"].rank(method="min")
    table["ranked"] = int(ranked.sum())
    table["order"] = table["position"].fillna(math.inf)
    return table.sort_values(["order", "candidate"]).drop(columns="order")


def rank_verdicts(table: pd.DataFrame) -> dict[str, str]:
    """One sentence per task, from the task's ``*`` rows of :func:`metric_table`.

    Returns:
        task -> e.g. ``"ivf: the student ranks 2nd of 12 by the eight-metric mean rank (3.38;
        best: SeAFusion, 2.75)"``.
    """
    sentences = {}
    overall = table[table["dataset"] == ALL_DATASETS]
    for task, rows in overall.groupby("task", sort=False):
        ranked = rows[rows["role"] != PSEUDOLABEL].sort_values("mean_rank")
        student = ranked[ranked["role"] == STUDENT]
        if student.empty:
            continue
        position, mean_rank = int(student["position"].iloc[0]), float(student["mean_rank"].iloc[0])
        best = ranked.iloc[0]
        others = ranked[ranked["role"] != STUDENT].iloc[0] if len(ranked) > 1 else None
        if position == 1 and others is not None:
            tail = f"next: {others['candidate']}, {others['mean_rank']:.2f}"
        else:
            tail = f"best: {best['candidate']}, {best['mean_rank']:.2f}"
        sentences[str(task)] = (
            f"{task}: the student ranks {_ordinal(position)} of {len(ranked)} by the "
            f"eight-metric mean rank ({mean_rank:.2f}; {tail})"
        )
    return sentences


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


__all__ = [
    "ALL_DATASETS",
    "COLUMNS",
    "RANKED_METRICS",
    "SHOWN_METRICS",
    "metric_table",
    "rank_verdicts",
]
