"""Task-aware selection of one pseudo-label per source pair among the teachers' outputs.

Each task has a *profile*: the metrics that matter for it and their weights. For one pair, every
profile metric ``m`` (weight ``w_m``) is min-max normalized across that pair's candidates,

    norm_m(c) = 1 - (best_m - o_m(c)) / span_m,    o_m = value (higher is better) or -value,
    best_m = max_c o_m(c),    span_m = max(best_m - min_c o_m(c), span_floor * max(|best|, |worst|)),

so the best candidate on ``m`` scores 1 and the worst 0. A metric constant across the candidates
gives every candidate 1 (it does not discriminate, and cannot make a pair look weak); the span
floor keeps a nearly constant one from blowing tiny differences up to the full [0, 1] range
(a difference ``d`` under the floor costs only ``d / floor``). A NaN or infinite value (e.g.
``SCD`` of a flat image) counts as the worst, 0; a metric with no finite value for any candidate
of a pair is left out of that pair's composite. The composite is the weighted mean ``sum_m w_m norm_m / sum_m w_m``, in [0, 1].

:func:`composite_of` scores a new image (a refined pseudo-label) with the *candidates'* best and
span, so it can exceed 1 (better than every teacher on a metric) or drop below 0.

The reliability filter rejects a pair whose best candidate is *weak* (composite under
``min_composite``: no candidate is good on most of the profile at once) or *contested* (a candidate
within ``min_margin`` of it leads on metrics holding at least half of the profile weight: the
metrics split between two different answers). Ground truth (``PSNR_gt``, ``SSIM_gt``) is never
read by the selection; :func:`selection_report` uses it only to report how good the choice was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from fusionfm.config import TASKS, reject_unknown_keys
from fusionfm.io import SELECTION_SCHEMA, InputError
from fusionfm.metrics import GROUND_TRUTH_METRICS
from fusionfm.pseudolabel.task_metrics import metric_higher_is_better

DEFAULT_PROFILES: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "ivf": MappingProxyType({"VIF": 1.0, "Qabf": 1.0, "MI": 1.0, "SAL": 1.0}),
        "mif": MappingProxyType({"VIF": 1.0, "Qabf": 1.0, "MI": 1.0, "SAL": 0.5}),
        "mef": MappingProxyType({"CC": 2.0, "WE": 0.5, "EN": 0.5}),
        "mff": MappingProxyType({"FOCUS": 2.0, "AG": 1.0}),
    }
)
"""Task -> {metric: weight}, the default profiles.

* ``ivf``: visual information (VIF), edge transfer (Qabf), shared information (MI) and the hot
  targets' intensity (SAL), equally.
* ``mif``: the same, with SAL at half weight (bright structures matter, but a medical fusion must
  also keep the darker soft-tissue contrast of MRI).
* ``mef``: tonal fidelity to both exposures (CC) first, then well-exposedness (WE) and entropy
  (EN). Global contrast (SD) is left out: on the synthetic multi-exposure sets, whose reference is
  a global tone curve, SD ranks the candidates *against* the ground truth (local-contrast
  boosting methods score high SD and low PSNR_gt), while CC tracks it.
* ``mff``: sharpness matched to the per-pixel sharper source (FOCUS, which also penalizes
  ringing), plus average gradient (AG) as a second sharpness cue that separates near-ties in
  FOCUS. Qabf, though usual for multi-focus, lowered the ground-truth PSNR of the selection on
  every tuning seed and is left out.

Tuned on synthetic seeds 14 and 13 (12 pairs, 128x160) and checked on seeds 1, 2, 3 with
``benchmarks/pseudolabels.py``; ground truth served only that check.
"""

STATUS_SELECTED = "selected"
STATUS_REJECTED = "rejected"

_KEYS = ("profiles", "min_composite", "min_margin", "span_floor")


@dataclass(frozen=True)
class SelectionConfig:
    """Task profiles and reliability thresholds of the selection.

    Attributes:
        profiles: task -> {metric: weight >= 0}; metric names from the standard suite
            (:data:`fusionfm.metrics.HIGHER_IS_BETTER`, ground-truth metrics excluded) or the
            task metrics (:data:`fusionfm.pseudolabel.task_metrics.TASK_METRICS`); at least one
            positive weight per task.
        min_composite: a pair whose best composite is below this is rejected as ``weak``.
        min_margin: a pair is rejected as ``contested`` when a candidate within this composite
            distance of the best beats it on metrics holding at least half of the profile
            weight (a split vote). A close candidate that loses on most of the profile is an
            agreeing near-twin (e.g. two multi-scale methods), not a contest, and does not
            cause a rejection.
        span_floor: relative floor of a metric's range across candidates; differences smaller
            than ``span_floor * max(|best|, |worst|)`` count as ties (see the module docstring).
    """

    profiles: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_PROFILES)
    min_composite: float = 0.5
    min_margin: float = 0.02
    span_floor: float = 1e-3

    def __post_init__(self) -> None:
        profiles: dict[str, Mapping[str, float]] = {}
        for task, profile in dict(self.profiles).items():
            if task not in TASKS:
                raise InputError(
                    f"selection.profiles: unknown task {task!r}; valid: {', '.join(TASKS)}"
                )
            weights: dict[str, float] = {}
            for metric, weight in dict(profile).items():
                if metric in GROUND_TRUTH_METRICS:
                    raise InputError(
                        f"selection.profiles.{task}: {metric} needs ground truth and may not "
                        "drive the selection"
                    )
                try:
                    metric_higher_is_better(metric)
                except KeyError as err:
                    raise InputError(f"selection.profiles.{task}: {err.args[0]}") from None
                if (
                    isinstance(weight, bool)
                    or not isinstance(weight, int | float)
                    or not (math.isfinite(weight) and weight >= 0)
                ):
                    raise InputError(
                        f"selection.profiles.{task}.{metric}: weight must be a number >= 0, "
                        f"got {weight!r}"
                    )
                if weight > 0:
                    weights[metric] = float(weight)
            if not weights:
                raise InputError(f"selection.profiles.{task}: needs at least one positive weight")
            profiles[task] = MappingProxyType(weights)
        object.__setattr__(self, "profiles", MappingProxyType(profiles))
        for name in ("min_composite", "min_margin", "span_floor"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise InputError(f"selection.{name}: expected a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.span_floor < 0:
            raise InputError(f"selection.span_floor: must be >= 0, got {self.span_floor}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Mapping proxies do not pickle; rebuild from plain dicts (process pools pickle configs).
        profiles = {task: dict(p) for task, p in self.profiles.items()}
        return (type(self), (profiles, self.min_composite, self.min_margin, self.span_floor))

    def __hash__(self) -> int:
        profiles = tuple(sorted((t, tuple(sorted(p.items()))) for t, p in self.profiles.items()))
        return hash((profiles, self.min_composite, self.min_margin, self.span_floor))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> SelectionConfig:
        """Build from the ``selection`` config section; missing keys take the defaults.

        A task listed under ``profiles`` replaces that task's default profile entirely; tasks not
        listed keep theirs.

        Raises:
            InputError: an unknown key, task or metric, or a bad value.
        """
        d = dict(d or {})
        reject_unknown_keys("selection", d, _KEYS)
        profiles = {task: dict(p) for task, p in DEFAULT_PROFILES.items()}
        profiles.update({task: dict(p) for task, p in dict(d.get("profiles") or {}).items()})
        kwargs = {k: d[k] for k in ("min_composite", "min_margin", "span_floor") if k in d}
        return cls(profiles=profiles, **kwargs)

    def profile(self, task: str) -> Mapping[str, float]:
        """The profile of ``task``.

        Raises:
            InputError: no profile for that task.
        """
        if task not in self.profiles:
            raise InputError(f"selection: no profile for task {task!r}")
        return self.profiles[task]


def teacher_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The teacher rows of a long scores table (``SCORES_SCHEMA``), as ``pair, candidate, metric,
    value``; a table without a ``role`` column is taken as all teachers."""
    required = {"pair", "candidate", "metric", "value"}
    missing = sorted(required - set(scores.columns))
    if missing:
        raise InputError(f"scores table is missing columns {missing}")
    if "role" in scores.columns:
        scores = scores[scores["role"] == "teacher"]
    return scores[["pair", "candidate", "metric", "value"]]


def wide_scores(scores: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Pivot long teacher scores to one row per ``(pair, candidate)`` and one column per metric.

    Args:
        scores: long scores (``pair, candidate, metric, value`` [, ``role``]).
        metrics: columns to keep (missing metrics become NaN columns); default all.

    Returns:
        Frame with columns ``pair, candidate`` and the metric columns, sorted by pair, candidate.
    """
    long = teacher_scores(scores)
    if long.duplicated(["pair", "candidate", "metric"]).any():
        raise InputError("scores table has duplicate (pair, candidate, metric) rows")
    wide = long.pivot(index=["pair", "candidate"], columns="metric", values="value")
    wide.columns.name = None
    if metrics is not None:
        wide = wide.reindex(columns=metrics)
    wide = wide.astype(np.float64).replace([np.inf, -np.inf], np.nan).reset_index()
    return wide.sort_values(["pair", "candidate"], kind="stable").reset_index(drop=True)


def _oriented(values: pd.Series | np.ndarray | float, metric: str) -> Any:
    return values if metric_higher_is_better(metric) else -values


def _span(best: Any, worst: Any, span_floor: float) -> Any:
    magnitude = np.maximum(np.abs(best), np.abs(worst))
    return np.maximum(np.maximum(best - worst, span_floor * magnitude), 1e-12)


def composite_scores(scores: pd.DataFrame, task: str, config: SelectionConfig) -> pd.DataFrame:
    """Normalized profile metrics and the composite of every teacher candidate of every pair.

    Args:
        scores: long scores (``pair, candidate, metric, value``; rows with ``role`` other than
            ``teacher`` are ignored).
        task: the dataset's task (picks the profile).
        config: selection settings.

    Returns:
        One row per ``(pair, candidate)``: ``pair``, ``candidate``, the raw profile metrics
        (named as in the profile), their normalized values (``<metric>_norm``, in [0, 1]) and
        ``composite`` (NaN only when no profile metric is finite for any candidate of the pair);
        sorted by pair, then composite descending, then candidate name.
    """
    profile = config.profile(task)
    metrics = list(profile)
    long = teacher_scores(scores)
    missing = sorted(set(metrics) - set(long["metric"]))
    if missing and len(long):
        raise InputError(
            f"scores have no {', '.join(missing)} rows, which the {task} profile weighs; score "
            "the candidates with compute_task_metrics as well as compute_metrics"
        )
    wide = wide_scores(long, metrics)
    numerator = np.zeros(len(wide))
    denominator = np.zeros(len(wide))
    for metric, weight in profile.items():
        oriented = _oriented(wide[metric], metric)
        best = oriented.groupby(wide["pair"], sort=False).transform("max")
        worst = oriented.groupby(wide["pair"], sort=False).transform("min")
        norm = 1.0 - (best - oriented) / _span(best, worst, config.span_floor)
        present = best.notna().to_numpy()  # some candidate of the pair has a finite value
        norm = norm.where(oriented.notna(), 0.0).where(present)
        wide[f"{metric}_norm"] = norm
        numerator += np.where(present, weight * norm.fillna(0.0).to_numpy(), 0.0)
        denominator += np.where(present, weight, 0.0)
    safe = np.where(denominator > 0, denominator, 1.0)
    wide["composite"] = np.where(denominator > 0, numerator / safe, np.nan)
    columns = ["pair", "candidate", *metrics, *(f"{m}_norm" for m in metrics), "composite"]
    ordered = wide[columns].sort_values(
        ["pair", "composite", "candidate"],
        ascending=[True, False, True],
        kind="stable",
        na_position="last",
    )
    return ordered.reset_index(drop=True)


def normalized_values(
    values: Mapping[str, float], candidate_values: pd.DataFrame, task: str, config: SelectionConfig
) -> dict[str, float]:
    """Normalized profile metrics of a new image under one pair's candidate normalization.

    Args:
        values: raw metric values of the new image (at least the profile metrics; a missing or
            NaN value counts as the worst candidate, 0).
        candidate_values: that pair's teacher candidates, long (``candidate, metric, value``
            [, ``pair``, ``role``]) or wide (one row per candidate, one column per metric).
        task: the task (picks the profile).
        config: selection settings.

    Returns:
        metric -> normalized value (1 = as good as the best candidate; may exceed 1 or drop
        below 0); metrics NaN for every candidate are absent.

    Raises:
        InputError: ``candidate_values`` holds more than one pair, or no candidate.
    """
    profile = config.profile(task)
    wide = _candidate_frame(candidate_values, list(profile))
    result: dict[str, float] = {}
    for metric in profile:
        raw = wide[metric].to_numpy(dtype=np.float64)
        oriented = _oriented(np.where(np.isfinite(raw), raw, np.nan), metric)
        if not np.isfinite(oriented).any():
            continue
        best = float(np.nanmax(oriented))
        worst = float(np.nanmin(oriented))
        value = float(values.get(metric, math.nan))
        if not math.isfinite(value):
            result[metric] = 0.0
            continue
        span = _span(best, worst, config.span_floor)
        result[metric] = float(1.0 - (best - _oriented(value, metric)) / span)
    return result


def composite_of(
    values: Mapping[str, float], candidate_values: pd.DataFrame, task: str, config: SelectionConfig
) -> float:
    """Composite of a new image under the same per-pair normalization as the candidates.

    The best value and the range of each profile metric come from ``candidate_values``, so the
    composite of one of the candidates equals its :func:`composite_scores` composite, and a new
    image better than every candidate on some metric may score above 1.

    Args:
        values: raw metric values of the new image.
        candidate_values: the pair's teacher candidates (see :func:`normalized_values`).
        task: the task.
        config: selection settings.

    Returns:
        The composite; NaN when no profile metric is finite for any candidate.
    """
    profile = config.profile(task)
    norms = normalized_values(values, candidate_values, task, config)
    weight = sum(profile[m] for m in norms)
    if weight <= 0:
        return math.nan
    return float(sum(profile[m] * v for m, v in norms.items()) / weight)


def _candidate_frame(candidate_values: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    if {"metric", "value"} <= set(candidate_values.columns):
        long = candidate_values
        if "candidate" not in long.columns:
            raise InputError("candidate scores need a 'candidate' column")
        if "pair" not in long.columns:
            long = long.assign(pair="")
        wide = wide_scores(long, metrics)
    else:
        wide = candidate_values.reindex(
            columns=[*(["pair"] if "pair" in candidate_values else []), *metrics]
        )
    if "pair" in wide.columns and wide["pair"].nunique() > 1:
        raise InputError("candidate scores must hold a single pair")
    if len(wide) == 0:
        raise InputError("no candidate scores to normalize against")
    return wide


def select_pseudolabels(
    scores: pd.DataFrame, manifest: pd.DataFrame, task: str, config: SelectionConfig
) -> pd.DataFrame:
    """Choose one teacher output per pair, or reject the pair.

    Args:
        scores: long scores of the dataset (``SCORES_SCHEMA``; only ``teacher`` rows are used,
            ground-truth metrics never are).
        manifest: the dataset manifest (``MANIFEST_SCHEMA``; ``pair`` and ``split`` are used).
        task: the dataset's task.
        config: selection settings.

    Returns:
        One row per manifest pair, in manifest order, with the columns of
        :data:`fusionfm.io.SELECTION_SCHEMA`.

    Raises:
        InputError: the manifest is of another task, or a table lacks a column.
    """
    for column in ("pair", "split"):
        if column not in manifest.columns:
            raise InputError(f"manifest is missing column {column!r}")
    if "task" in manifest.columns and len(manifest) and set(manifest["task"]) != {task}:
        raise InputError(
            f"manifest tasks {sorted(set(manifest['task']))} do not match task {task!r}"
        )
    profile = config.profile(task)
    composites = composite_scores(scores, task, config)
    groups = {str(pair): frame for pair, frame in composites.groupby("pair", sort=False)}
    rows = [
        _select_one(str(pair), str(split), groups.get(str(pair)), task, profile, config)
        for pair, split in zip(manifest["pair"], manifest["split"], strict=True)
    ]
    return pd.DataFrame(rows, columns=SELECTION_SCHEMA.names)


def _select_one(
    pair: str,
    split: str,
    candidates: pd.DataFrame | None,
    task: str,
    profile: Mapping[str, float],
    config: SelectionConfig,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "pair": pair,
        "split": split,
        "task": task,
        "status": STATUS_REJECTED,
        "teacher": None,
        "composite": math.nan,
        "runner_up": None,
        "runner_up_composite": math.nan,
        "margin": math.nan,
        "contender_support": math.nan,
        "n_candidates": 0,
        "reason": "",
        "details": "{}",
    }
    if candidates is None or len(candidates) == 0:
        row["reason"] = "rejected: no candidates (no teacher output was scored for this pair)"
        return row
    ranked = candidates.reset_index(drop=True)  # already sorted by composite, then name
    best = ranked.iloc[0]
    row.update(
        teacher=str(best["candidate"]), composite=float(best["composite"]), n_candidates=len(ranked)
    )
    details = {
        m: {
            "value": _finite_or_none(best[m]),
            "norm": _finite_or_none(best[f"{m}_norm"]),
            "weight": w,
        }
        for m, w in profile.items()
    }
    row["details"] = json.dumps(details)
    parts = ", ".join(
        f"{m} {best[f'{m}_norm']:.2f}" if pd.notna(best[f"{m}_norm"]) else f"{m} n/a"
        for m in profile
    )
    summary = f"best composite {best['composite']:.3f} ({parts})"
    challenger, challenger_support = None, 0.0
    if len(ranked) > 1:
        second = ranked.iloc[1]
        row.update(
            runner_up=str(second["candidate"]), runner_up_composite=float(second["composite"])
        )
        row["margin"] = float(best["composite"] - second["composite"])
        summary += f"; margin {row['margin']:.3f} over {second['candidate']}"
        # Contenders: every candidate within min_margin of the best; the pair is contested when
        # one of them beats the best on metrics holding at least half of the profile weight.
        total = sum(profile.values())
        for _, other in ranked.iloc[1:].iterrows():
            if not float(best["composite"]) - float(other["composite"]) < config.min_margin:
                break
            support = (
                sum(w for m, w in profile.items() if _ahead(other[f"{m}_norm"], best[f"{m}_norm"]))
                / total
            )
            if support > challenger_support:
                challenger, challenger_support = str(other["candidate"]), float(support)
        row["contender_support"] = challenger_support
    else:
        summary += "; only candidate"
    composite = row["composite"]
    if not math.isfinite(composite):
        row["reason"] = f"rejected: no profile metric is finite for any candidate ({summary})"
    elif composite < config.min_composite:
        row["reason"] = f"rejected: weak: {summary} < min_composite {config.min_composite:.3f}"
    elif challenger is not None and challenger_support >= 0.5:
        margin = float(best["composite"]) - float(
            ranked.loc[ranked["candidate"] == challenger, "composite"].iloc[0]
        )
        row["reason"] = (
            f"rejected: contested: {summary}; {challenger} is within {margin:.3f} "
            f"(< min_margin {config.min_margin:.3f}) and leads on {challenger_support:.0%} of "
            "the profile weight"
        )
    else:
        row["status"] = STATUS_SELECTED
        row["reason"] = f"selected {best['candidate']}: {summary}"
    return row


def _ahead(challenger: float, incumbent: float) -> bool:
    """Whether a normalized value beats another (NaN never beats, and is beaten by a number)."""
    if not math.isfinite(float(challenger)):
        return False
    return not math.isfinite(float(incumbent)) or float(challenger) > float(incumbent)


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def selection_report(
    scores: pd.DataFrame, selection: pd.DataFrame, task: str, config: SelectionConfig
) -> dict[str, Any]:
    """Summary of a selection, with ground-truth checks where ground truth exists.

    Ground truth is only *read here*, after the choice: it measures how well the GT-free composite
    ranks the candidates.

    Args:
        scores: the long scores the selection used (may hold ``PSNR_gt`` rows).
        selection: the output of :func:`select_pseudolabels`.
        task: the task.
        config: selection settings.

    Returns:
        JSON-ready dict: ``task``, ``pairs``, ``selected``, ``rejected``, ``rejected_by`` (reason
        kind -> count), ``mean_composite_selected``, ``selection_share`` (teacher -> fraction of
        the selected pairs), ``profile``; and, when ``PSNR_gt`` is present, ``ground_truth`` with
        ``spearman_composite_psnr_gt`` (over every (pair, candidate)),
        ``mean_pair_spearman`` (mean of the per-pair rank correlations), ``selected_mean_psnr_gt``,
        ``teacher_mean_psnr_gt`` (each teacher's mean over the same selected pairs),
        ``teacher_mean_psnr_gt_all_pairs``, ``best_teacher``, ``best_teacher_mean_psnr_gt`` and
        ``oracle_mean_psnr_gt`` (the per-pair best teacher, an upper bound of any selection).
    """
    from scipy.stats import spearmanr

    selected = selection[selection["status"] == STATUS_SELECTED]
    rejected = selection[selection["status"] != STATUS_SELECTED]
    kinds = (
        rejected["reason"].str.extract(r"^rejected: ([a-z ]+?)[:(]", expand=False).fillna("other")
    )
    report: dict[str, Any] = {
        "task": task,
        "profile": dict(config.profile(task)),
        "pairs": int(len(selection)),
        "selected": int(len(selected)),
        "rejected": int(len(rejected)),
        "rejected_by": {str(k).strip(): int(v) for k, v in kinds.value_counts().items()},
        "mean_composite_selected": _mean(selected["composite"]),
        "selection_share": {
            str(k): float(v) for k, v in selected["teacher"].value_counts(normalize=True).items()
        },
    }
    long = teacher_scores(scores)
    if not (long["metric"] == "PSNR_gt").any():
        return report
    composites = composite_scores(scores, task, config)
    psnr = long[long["metric"] == "PSNR_gt"].rename(columns={"value": "PSNR_gt"})
    joined = composites.merge(psnr[["pair", "candidate", "PSNR_gt"]], on=["pair", "candidate"])
    finite = joined[np.isfinite(joined["composite"]) & np.isfinite(joined["PSNR_gt"])]
    overall = (
        float(spearmanr(finite["composite"], finite["PSNR_gt"]).statistic)
        if len(finite) > 2
        else math.nan
    )
    per_pair = [
        float(spearmanr(g["composite"], g["PSNR_gt"]).statistic)
        for _, g in finite.groupby("pair")
        if len(g) > 2 and g["composite"].nunique() > 1 and g["PSNR_gt"].nunique() > 1
    ]
    chosen = selected[["pair", "teacher"]].merge(
        psnr[["pair", "candidate", "PSNR_gt"]],
        left_on=["pair", "teacher"],
        right_on=["pair", "candidate"],
    )
    on_selected = psnr[psnr["pair"].isin(set(selected["pair"]))]
    teacher_means = on_selected.groupby("candidate")["PSNR_gt"].agg(_mean)
    best_teacher = str(teacher_means.idxmax()) if len(teacher_means) else None
    report["ground_truth"] = {
        "spearman_composite_psnr_gt": _nan_to_none(overall),
        "mean_pair_spearman": _mean(pd.Series(per_pair, dtype=float)),
        "selected_mean_psnr_gt": _mean(chosen["PSNR_gt"]),
        "teacher_mean_psnr_gt": {str(k): float(v) for k, v in teacher_means.items()},
        "teacher_mean_psnr_gt_all_pairs": {
            str(k): float(v) for k, v in psnr.groupby("candidate")["PSNR_gt"].agg(_mean).items()
        },
        "best_teacher": best_teacher,
        "best_teacher_mean_psnr_gt": float(teacher_means.max()) if len(teacher_means) else None,
        "oracle_mean_psnr_gt": _mean(on_selected.groupby("pair")["PSNR_gt"].max()),
    }
    return report


def _mean(values: pd.Series) -> float | None:
    """Mean of the finite values, exactly rounded (``math.fsum``) so that the same values in any
    order give the same mean: a selection equal to a teacher reports exactly its mean."""
    values = pd.to_numeric(values, errors="coerce")
    values = values[np.isfinite(values)]
    return math.fsum(values) / len(values) if len(values) else None


def _nan_to_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = [
    "DEFAULT_PROFILES",
    "SELECTION_SCHEMA",
    "STATUS_REJECTED",
    "STATUS_SELECTED",
    "SelectionConfig",
    "composite_of",
    "composite_scores",
    "normalized_values",
    "select_pseudolabels",
    "selection_report",
    "teacher_scores",
    "wide_scores",
]
