"""The Fusion Refiner: divide and conquer on each selected pseudo-label.

For one pseudo-label ``F`` (the selected teacher's output) and its sources ``A``, ``B``:

1. **Diagnose** (:mod:`~fusionfm.refine.diagnose`): measure, against the sources only, whether its
   contrast, exposure, salient intensity, noise or detail is degraded. Which tests run is set per
   task by :attr:`RefinerConfig.operations`.
2. **Decompose** (:mod:`~fusionfm.refine.decompose`): luminance into an edge-preserving base and
   a detail layer; the sources' salient region as a soft weight.
3. **Enhance** (:mod:`~fusionfm.refine.enhance`): for each degraded component, in the order of
   :data:`~fusionfm.refine.diagnose.COMPONENTS`, apply its operation to its own layer at each of
   :attr:`RefinerConfig.strengths` and keep the strength with the highest task composite, if it
   beats the current image by at least ``min_gain`` and respects the tolerance below; later
   components work on the result.
4. **Recombine** the luminance with the label's own chroma.
5. **Accept** the refined image only if its task composite - normalized with the *candidates'*
   per-pair ranges (:func:`fusionfm.pseudolabel.selection.composite_of`) - is strictly higher
   than the selected label's, by at least ``min_gain``, and no profile metric's normalized value
   drops by more than ``tolerance`` (in units of the candidates' range of that metric) below
   the selected label's. Otherwise the selected label is kept unchanged.

So a refined label never scores a lower composite than the selected one, by construction, and
ground truth plays no part: the decisions read the sources, the candidates' scores and the
label only.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from fusionfm.config import TASKS, reject_unknown_keys
from fusionfm.io import (
    REFINE_SCHEMA,
    InputError,
    atomic_directory,
    read_image,
    write_image,
    write_table,
)
from fusionfm.metrics import METRIC_NAMES, compute_metrics
from fusionfm.pseudolabel.selection import (
    STATUS_SELECTED,
    SelectionConfig,
    composite_of,
    normalized_values,
    teacher_scores,
)
from fusionfm.pseudolabel.task_metrics import TASK_METRICS, compute_task_metrics
from fusionfm.refine import enhance
from fusionfm.refine.decompose import (
    Layers,
    decompose,
    merge_luminance,
    noise_map,
    noise_sigma,
    saliency_weight,
    split_luminance,
)
from fusionfm.refine.diagnose import COMPONENTS, Diagnosis, SourceContext, is_degraded, measure
from fusionfm.utils import parallel_map

log = logging.getLogger("fusionfm.refine")

STATUS_REFINED = "refined"
STATUS_KEPT = "kept"

DEFAULT_OPERATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "ivf": ("noise", "contrast", "saliency", "detail"),
        "mif": ("noise", "contrast", "saliency", "detail"),
        "mef": ("noise", "contrast"),
        "mff": ("noise", "detail"),
    }
)
"""Task -> the components the refiner tests and treats.

Measured with ``benchmarks/pseudolabels.py`` on the synthetic sets (ground truth read only there):

* ``mef`` leaves out ``exposure`` and ``detail``. Moving the mean toward mid-gray raised the
  composite (through WE) but lowered the ground-truth PSNR on check seeds 2 and 3 (by up to
  4.5 dB on a bright pair): the fused image's own mean brightness predicts the reference's
  better (mean error 8.5 gray levels) than mid-gray does (14.8). Detail injection lowered it by
  about 0.05 dB. Both stay available through ``RefinerConfig.operations``.
* ``mff`` leaves out ``contrast`` and ``exposure``: a multi-focus fusion should keep the sources'
  tones exactly; only its sharpness and noise can be wrong.
* ``saliency`` is for the tasks with salient bright structures (``ivf``, ``mif``).
"""

_FLOAT_KEYS = (
    "tolerance",
    "min_gain",
    "base_eps",
    "saliency_feather",
    "saliency_smooth",
    "contrast_ratio",
    "contrast_max_gain",
    "exposure_offset",
    "saliency_min",
    "noise_ratio",
    "noise_k",
    "detail_ratio",
)
_INT_KEYS = ("base_radius", "detail_window")


@dataclass(frozen=True)
class RefinerConfig:
    """Thresholds of the diagnoses, strengths of the operations and the accept rule.

    Attributes:
        tolerance: largest allowed drop of any profile metric's normalized value (units of the
            candidates' range of that metric on the pair) from the selected label to the
            refined one.
        min_gain: the refined composite must exceed the selected one by more than this (> 0
            makes "strictly higher" robust to rounding).
        operations: task -> components (of :data:`~fusionfm.refine.diagnose.COMPONENTS`) tested
            and treated for that task; a task left out gets no refinement.
        strengths: strengths tried for each operation, each in (0, 1].
        base_radius: guided-filter radius of the base/detail split (pixels).
        base_eps: guided-filter regularization on the [0, 1] scale.
        detail_window: box side of the local detail energy (pixels).
        saliency_feather: Gaussian sigma softening the salient region's border (pixels).
        saliency_smooth: Gaussian sigma of the intensity ratio of the saliency restoration.
        contrast_ratio: ``contrast`` is degraded below this base-std ratio to the more
            contrasted source.
        contrast_max_gain: largest base contrast gain.
        exposure_offset: ``exposure`` is degraded when the mean luminance is further than this
            from mid-gray (on [0, 1]).
        saliency_min: ``saliency`` is degraded below this ``SAL``.
        noise_ratio: ``noise`` is degraded above this ratio of the fused noise estimate to the
            noisier source's.
        noise_k: soft threshold of the denoising and of the injected detail, in noise sigmas.
        detail_ratio: ``detail`` is degraded below this share of the sharper source's detail
            energy.
    """

    tolerance: float = 0.05
    min_gain: float = 1e-3
    operations: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_OPERATIONS)
    strengths: tuple[float, ...] = (0.25, 0.5, 1.0)
    base_radius: int = 4
    base_eps: float = 0.01
    detail_window: int = 7
    saliency_feather: float = 2.0
    saliency_smooth: float = 3.0
    contrast_ratio: float = 0.9
    contrast_max_gain: float = 1.5
    exposure_offset: float = 0.08
    saliency_min: float = 0.95
    noise_ratio: float = 1.05
    noise_k: float = 1.0
    detail_ratio: float = 0.9

    def __post_init__(self) -> None:
        for name in _FLOAT_KEYS:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise InputError(f"refiner.{name}: expected a number, got {value!r}")
            if value < 0:
                raise InputError(f"refiner.{name}: must be >= 0, got {value}")
            object.__setattr__(self, name, float(value))
        for name in _INT_KEYS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"refiner.{name}: expected an integer >= 1, got {value!r}")
        strengths = tuple(float(s) for s in self.strengths)
        if not strengths or any(not (0.0 < s <= 1.0) for s in strengths):
            raise InputError(
                f"refiner.strengths: expected values in (0, 1], got {self.strengths!r}"
            )
        object.__setattr__(self, "strengths", strengths)
        operations: dict[str, tuple[str, ...]] = {}
        for task, components in dict(self.operations).items():
            if task not in TASKS:
                raise InputError(
                    f"refiner.operations: unknown task {task!r}; valid: {', '.join(TASKS)}"
                )
            unknown = sorted(set(components) - set(COMPONENTS))
            if unknown:
                raise InputError(
                    f"refiner.operations.{task}: unknown component(s) {unknown}; "
                    f"known: {', '.join(COMPONENTS)}"
                )
            operations[task] = tuple(c for c in COMPONENTS if c in set(components))
        object.__setattr__(self, "operations", MappingProxyType(operations))

    def __reduce__(self) -> tuple[Any, ...]:
        # Mapping proxies do not pickle; rebuild from plain values (process pools pickle configs).
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["operations"] = {t: tuple(c) for t, c in self.operations.items()}
        return (_rebuild_refiner_config, (values,))

    def __hash__(self) -> int:
        values = [getattr(self, f.name) for f in fields(self) if f.name != "operations"]
        return hash((tuple(values), tuple(sorted(self.operations.items()))))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> RefinerConfig:
        """Build from the ``refiner`` config section; missing keys take the defaults.

        A task listed under ``operations`` replaces that task's default list.

        Raises:
            InputError: an unknown key or a bad value.
        """
        d = dict(d or {})
        reject_unknown_keys("refiner", d, (*_FLOAT_KEYS, *_INT_KEYS, "operations", "strengths"))
        kwargs = {k: v for k, v in d.items() if k not in ("operations", "strengths")}
        if "strengths" in d:
            kwargs["strengths"] = tuple(d["strengths"])
        operations = dict(DEFAULT_OPERATIONS)
        operations.update({t: tuple(c) for t, c in dict(d.get("operations") or {}).items()})
        return cls(operations=operations, **kwargs)

    def threshold(self, component: str) -> float:
        """The threshold of a component's test."""
        return {
            "contrast": self.contrast_ratio,
            "exposure": self.exposure_offset,
            "saliency": self.saliency_min,
            "noise": self.noise_ratio,
            "detail": self.detail_ratio,
        }[component]


def _rebuild_refiner_config(values: dict[str, Any]) -> RefinerConfig:
    return RefinerConfig(**values)


@dataclass(frozen=True)
class Attempt:
    """One operation tried at one strength.

    Attributes:
        operation: ``"<name>:<strength>"``, e.g. ``"inject:0.50"``.
        composite: composite of the image it produced.
        worst_drop: largest normalized drop of a profile metric from the selected label.
        kept: whether it became part of the refined image.
    """

    operation: str
    composite: float
    worst_drop: float
    kept: bool


@dataclass(frozen=True)
class RefineResult:
    """Outcome of refining one pseudo-label.

    Attributes:
        refined: the final pseudo-label, ``uint8`` of the input's shape (gray or RGB): the
            refined image when ``accepted``, else the selected image unchanged.
        accepted: whether the refined image passed the accept rule.
        diagnoses: degraded components found on the selected label.
        tests: every test run, degraded or not.
        operations: the operations in the refined image, ``"<name>:<strength>"``; empty when not
            accepted.
        attempts: every operation tried.
        composite_before: composite of the selected label.
        composite_after: composite of ``refined`` (equal to ``composite_before`` when kept).
        metrics_before: raw profile metrics of the selected label.
        metrics_after: raw profile metrics of ``refined``.
        reason: why it was refined or kept, in words.
    """

    refined: np.ndarray
    accepted: bool
    diagnoses: list[str]
    tests: list[Diagnosis]
    operations: list[str]
    attempts: list[Attempt]
    composite_before: float
    composite_after: float
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    reason: str


def profile_metrics(
    image: np.ndarray, a: np.ndarray, b: np.ndarray, task: str, metrics: tuple[str, ...]
) -> dict[str, float]:
    """Raw values of the given profile metrics (suite and task metrics) of one image.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)``, 0-255 scale.
        a: source A, same ``H, W``.
        b: source B, same ``H, W``.
        task: the task.
        metrics: names from the suite or :data:`~fusionfm.pseudolabel.task_metrics.TASK_METRICS`.

    Returns:
        metric -> value for each of ``metrics``.
    """
    suite = tuple(m for m in metrics if m in METRIC_NAMES)
    values: dict[str, float] = {}
    if suite:
        values.update(compute_metrics(image, a, b, metrics=suite))
    if any(m in TASK_METRICS for m in metrics):
        values.update(compute_task_metrics(image, a, b, task))
    return {m: float(values[m]) for m in metrics}


def source_context(a: np.ndarray, b: np.ndarray, config: RefinerConfig) -> SourceContext:
    """Decompose the sources once for the tests and operations of one pair.

    Args:
        a: source A, ``(H, W)`` or ``(H, W, 3)``.
        b: source B, same ``H, W``.
        config: refiner settings.

    Returns:
        The :class:`~fusionfm.refine.diagnose.SourceContext`.
    """
    y_a, _ = split_luminance(a)
    y_b, _ = split_luminance(b)
    return SourceContext(
        y_a=y_a,
        y_b=y_b,
        layers_a=decompose(y_a, config.base_radius, config.base_eps),
        layers_b=decompose(y_b, config.base_radius, config.base_eps),
        layers_max=decompose(np.maximum(y_a, y_b), config.base_radius, config.base_eps),
        sigma_a=noise_sigma(y_a),
        sigma_b=noise_sigma(y_b),
        noise_a=noise_map(y_a, config.detail_window),
        noise_b=noise_map(y_b, config.detail_window),
        saliency=saliency_weight(y_a, y_b, config.saliency_feather),
    )


def apply_operation(
    component: str,
    y: np.ndarray,
    layers: Layers,
    context: SourceContext,
    strength: float,
    config: RefinerConfig,
) -> np.ndarray:
    """Apply the operation treating ``component`` to a luminance plane.

    Args:
        component: one of :data:`~fusionfm.refine.diagnose.COMPONENTS`.
        y: fused luminance, float64 ``(H, W)``.
        layers: its base/detail split.
        context: the sources.
        strength: in (0, 1].
        config: refiner settings.

    Returns:
        float64 ``(H, W)`` luminance clipped to [0, 255].
    """
    if component == "noise":
        out = enhance.denoise(layers, noise_sigma(y), strength, config.noise_k)
    elif component == "exposure":
        out = enhance.exposure(layers, strength)
    elif component == "contrast":
        out = enhance.contrast(layers, context, strength, config.contrast_max_gain)
    elif component == "saliency":
        out = enhance.restore_saliency(layers, context, strength, config.saliency_smooth)
    elif component == "detail":
        out = enhance.inject_detail(layers, context, strength, config.detail_window, config.noise_k)
    else:
        raise ValueError(f"unknown component {component!r}")
    return np.clip(out, 0.0, 255.0)


def refine_pair(
    fused: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    task: str,
    candidate_values: pd.DataFrame,
    selection_config: SelectionConfig,
    refiner_config: RefinerConfig,
) -> RefineResult:
    """Diagnose, decompose, enhance and re-score one selected pseudo-label.

    Args:
        fused: the selected teacher output, ``uint8`` ``(H, W)`` or ``(H, W, 3)``.
        a: source A, ``(H, W)`` or ``(H, W, 3)``, same ``H, W``.
        b: source B, same ``H, W``.
        task: the task (picks the profile and the operations).
        candidate_values: the pair's teacher candidates' scores, long or wide (see
            :func:`fusionfm.pseudolabel.selection.normalized_values`); they fix the normalization.
        selection_config: the selection settings (profiles).
        refiner_config: the refiner settings.

    Returns:
        A :class:`RefineResult`.

    Raises:
        ValueError: images of different sizes.
        InputError: no candidate scores, or more than one pair in ``candidate_values``.
    """
    fused = np.asarray(fused)
    if fused.dtype != np.uint8:
        fused = np.clip(np.round(fused), 0, 255).astype(np.uint8)
    if fused.shape[:2] != np.asarray(a).shape[:2] or fused.shape[:2] != np.asarray(b).shape[:2]:
        raise ValueError(
            f"fused {fused.shape[:2]}, source A {np.asarray(a).shape[:2]} and source B "
            f"{np.asarray(b).shape[:2]} differ in size"
        )
    profile = selection_config.profile(task)
    metric_names = tuple(profile)

    def score(image: np.ndarray) -> tuple[dict[str, float], dict[str, float], float]:
        raw = profile_metrics(image, a, b, task, metric_names)
        norms = normalized_values(raw, candidate_values, task, selection_config)
        return raw, norms, composite_of(raw, candidate_values, task, selection_config)

    metrics_before, norms_before, composite_before = score(fused)

    def keep(reason: str, tests: list[Diagnosis], attempts: list[Attempt]) -> RefineResult:
        return RefineResult(
            refined=fused,
            accepted=False,
            diagnoses=[t.component for t in tests if t.degraded],
            tests=tests,
            operations=[],
            attempts=attempts,
            composite_before=composite_before,
            composite_after=composite_before,
            metrics_before=metrics_before,
            metrics_after=dict(metrics_before),
            reason=reason,
        )

    if not math.isfinite(composite_before):
        return keep("kept: the composite is undefined (no finite profile metric)", [], [])
    context = source_context(a, b, refiner_config)
    y, chroma = split_luminance(fused)
    layers = decompose(y, refiner_config.base_radius, refiner_config.base_eps)
    tests = []
    for component in refiner_config.operations.get(task, ()):
        value = measure(component, y, layers, context, refiner_config.detail_window)
        threshold = refiner_config.threshold(component)
        tests.append(
            Diagnosis(component, value, threshold, is_degraded(component, value, threshold))
        )
    degraded = [t.component for t in tests if t.degraded]
    if not degraded:
        found = "; ".join(t.describe() for t in tests) or "no test for this task"
        return keep(f"kept: no degraded component ({found})", tests, [])

    attempts: list[Attempt] = []
    operations: list[str] = []
    current_y, current_image, current_composite = y, fused, composite_before
    current_raw = metrics_before
    for component in degraded:
        current_layers = decompose(current_y, refiner_config.base_radius, refiner_config.base_eps)
        best: tuple[float, str, np.ndarray, np.ndarray, dict[str, float]] | None = None
        tried: list[tuple[str, float, float]] = []
        for strength in refiner_config.strengths:
            new_y = apply_operation(
                component, current_y, current_layers, context, strength, refiner_config
            )
            image = merge_luminance(new_y, chroma)
            raw, norms, composite = score(image)
            worst_drop = max(
                (norms_before[m] - norms.get(m, 0.0) for m in norms_before), default=0.0
            )
            name = f"{enhance.OPERATION_NAMES[component]}:{strength:.2f}"
            tried.append((name, composite, worst_drop))
            allowed = worst_drop <= refiner_config.tolerance and math.isfinite(composite)
            if (
                allowed
                and composite > current_composite + refiner_config.min_gain
                and (best is None or composite > best[0])
            ):
                best = (composite, name, new_y, image, raw)
        for name, composite, worst_drop in tried:
            attempts.append(
                Attempt(name, composite, worst_drop, best is not None and name == best[1])
            )
        if best is not None:
            current_composite, name, current_y, current_image, current_raw = best
            operations.append(name)

    diagnosis_text = "; ".join(t.describe() for t in tests if t.degraded)
    if not operations:
        best_try = max(attempts, key=lambda t: t.composite)
        return keep(
            f"kept: {diagnosis_text}; no operation raised the composite "
            f"{composite_before:.4f} by > {refiner_config.min_gain:g} within tolerance "
            f"{refiner_config.tolerance:g} (best try {best_try.operation}: "
            f"{best_try.composite:.4f}, worst drop {best_try.worst_drop:.3f})",
            tests,
            attempts,
        )
    return RefineResult(
        refined=current_image,
        accepted=True,
        diagnoses=degraded,
        tests=tests,
        operations=operations,
        attempts=attempts,
        composite_before=composite_before,
        composite_after=current_composite,
        metrics_before=metrics_before,
        metrics_after=current_raw,
        reason=(
            f"refined: {diagnosis_text}; {' + '.join(operations)} raised the composite "
            f"{composite_before:.4f} -> {current_composite:.4f}"
        ),
    )


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    pair: str
    split: str
    teacher: str
    path_a: str
    path_b: str
    path_label: str
    candidates: pd.DataFrame
    task: str
    selection_config: SelectionConfig
    refiner_config: RefinerConfig
    out_image: str


def _run_job(job: _Job) -> dict[str, Any]:
    a, b = read_image(job.path_a), read_image(job.path_b)
    fused = read_image(job.path_label)
    result = refine_pair(
        fused, a, b, job.task, job.candidates, job.selection_config, job.refiner_config
    )
    write_image(job.out_image, result.refined)
    return {
        "pair": job.pair,
        "split": job.split,
        "task": job.task,
        "teacher": job.teacher,
        "status": STATUS_REFINED if result.accepted else STATUS_KEPT,
        "diagnoses": list(result.diagnoses),
        "operations": list(result.operations),
        "composite_before": _finite(result.composite_before),
        "composite_after": _finite(result.composite_after),
        "metrics_before": json.dumps({k: _finite(v) for k, v in result.metrics_before.items()}),
        "metrics_after": json.dumps({k: _finite(v) for k, v in result.metrics_after.items()}),
        "reason": result.reason,
    }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def refine_dataset(
    manifest: pd.DataFrame,
    selection: pd.DataFrame,
    teacher_image_path: Callable[[str, str], Path],
    dataset_root: Path,
    scores: pd.DataFrame,
    task: str,
    selection_config: SelectionConfig,
    refiner_config: RefinerConfig,
    out_images: Path,
    out_table: Path,
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Refine every selected pseudo-label of a dataset and write the final labels.

    ``out_images/<pair>.png`` is the refined image where it was accepted and the selected
    teacher image unchanged otherwise, so the folder holds every final pseudo-label; both the
    folder and the table are written atomically.

    Args:
        manifest: the dataset manifest (``pair``, ``split``, ``path_a``, ``path_b``).
        selection: the selection table (``SELECTION_SCHEMA``); only ``selected`` rows are used.
        teacher_image_path: ``(teacher, pair) -> path`` of a teacher's output image.
        dataset_root: directory the manifest's paths are relative to.
        scores: long scores of the dataset (the candidates' normalization).
        task: the task.
        selection_config: selection settings (profiles).
        refiner_config: refiner settings.
        out_images: output folder of the final pseudo-labels.
        out_table: output Parquet table (``REFINE_SCHEMA``).
        workers: processes; > 1 uses a process pool.
        progress: show a tqdm progress bar.

    Returns:
        The table written to ``out_table``, one row per selected pair in selection order.

    Raises:
        InputError: a selected pair missing from the manifest or without candidate scores, or an
            unreadable image.
    """

    out_images, out_table, dataset_root = Path(out_images), Path(out_table), Path(dataset_root)
    rows_by_pair = {str(p): row for p, row in manifest.set_index("pair", drop=False).iterrows()}
    candidates = {str(p): g for p, g in teacher_scores(scores).groupby("pair", sort=False)}
    chosen = selection[selection["status"] == STATUS_SELECTED]
    label_dir = os.path.relpath(out_images, out_table.parent)
    with atomic_directory(out_images) as tmp:
        jobs = []
        for pair, teacher in zip(
            chosen["pair"].astype(str), chosen["teacher"].astype(str), strict=True
        ):
            if pair not in rows_by_pair:
                raise InputError(f"selected pair {pair!r} is not in the manifest")
            if pair not in candidates:
                raise InputError(f"selected pair {pair!r} has no teacher scores")
            row = rows_by_pair[pair]
            jobs.append(
                _Job(
                    pair=pair,
                    split=str(row["split"]),
                    teacher=teacher,
                    path_a=str(dataset_root / row["path_a"]),
                    path_b=str(dataset_root / row["path_b"]),
                    path_label=str(teacher_image_path(teacher, pair)),
                    candidates=candidates[pair].reset_index(drop=True),
                    task=task,
                    selection_config=selection_config,
                    refiner_config=refiner_config,
                    out_image=str(Path(tmp) / f"{pair}.png"),
                )
            )
        results = parallel_map(_run_job, jobs, workers, "refining", "label", progress)
        table = pd.DataFrame(results, columns=[n for n in REFINE_SCHEMA.names if n != "label"])
        table["label"] = [Path(label_dir, f"{pair}.png").as_posix() for pair in table["pair"]]
        table = table[list(REFINE_SCHEMA.names)]
    refined = int((table["status"] == STATUS_REFINED).sum())
    log.info("refined %d of %d selected pseudo-labels", refined, len(table))
    write_table(out_table, table, REFINE_SCHEMA)
    return table


__all__ = [
    "DEFAULT_OPERATIONS",
    "REFINE_SCHEMA",
    "STATUS_KEPT",
    "STATUS_REFINED",
    "Attempt",
    "RefineResult",
    "RefinerConfig",
    "apply_operation",
    "profile_metrics",
    "refine_dataset",
    "refine_pair",
    "source_context",
]
