"""The teacher stage: one teacher on every pair of one dataset (rule ``run_teacher``).

A job is one (dataset, teacher). It reads the dataset's manifest, fuses every pair (train and
test) and writes ``<out_images>/<pair>.png`` plus a timing table
(:data:`fusionfm.io.TIMING_SCHEMA`). Both outputs are staged in temporary locations and moved into
place only when every pair is done, so a failure leaves neither behind.

A teacher is named in the config either as a built-in (its mapping holds parameter overrides,
e.g. ``guided_filter: {r1: 45}``) or as an external (its mapping has a ``kind``, see
:mod:`fusionfm.teacher.external`). :func:`resolve_teacher` turns (name, mapping) into the
:class:`~fusionfm.teacher.registry.Teacher` and its parameters; built-ins are called through
:func:`~fusionfm.teacher.registry.run_teacher` (which checks task, sources and parameters), every
other teacher as ``teacher.fuse(a, b, task, pair=pair)``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from fusionfm.config import TASKS
from fusionfm.io import (
    MANIFEST_SCHEMA,
    TIMING_SCHEMA,
    InputError,
    atomic_directory,
    atomic_path,
    read_image,
    read_table,
    write_image,
    write_table,
)
from fusionfm.teacher.external import (
    SkippedPair,
    build_external_teacher,
    check_external_spec,
    external_tasks,
)
from fusionfm.teacher.registry import Teacher, check_teacher_params, get_teacher, run_teacher
from fusionfm.utils import fork_context

MANIFEST_NAME = "manifest.parquet"
"""File name of a built dataset's manifest inside its dataset folder."""

STATUS_OK, STATUS_SKIPPED = "ok", "skipped"
"""Values of the timing table's ``status`` column."""


def _load_builtin_teachers() -> None:
    """Import :mod:`fusionfm.teacher`, whose import registers the built-in teachers."""
    import fusionfm.teacher  # noqa: F401


def is_external_spec(spec: Mapping[str, Any] | None) -> bool:
    """Whether a teacher's config mapping describes an external teacher (it has a ``kind``)."""
    return isinstance(spec, Mapping) and "kind" in spec


def resolve_teacher(name: str, spec: Mapping[str, Any] | None) -> tuple[Teacher, dict[str, Any]]:
    """The teacher a config entry names, and the parameters to call it with.

    Args:
        name: teacher name.
        spec: for a built-in, its parameter overrides (None or ``{}`` for the defaults); for an
            external teacher, its entry with a ``kind``.

    Returns:
        ``(teacher, params)``; ``params`` is empty for external teachers.

    Raises:
        InputError: an unknown built-in, an external entry named like a built-in, or an invalid
            external entry.
    """
    _load_builtin_teachers()
    if is_external_spec(spec):
        _check_not_builtin(name)
        return build_external_teacher(name, spec), {}  # type: ignore[arg-type]
    if spec is not None and not isinstance(spec, Mapping):
        raise InputError(f"teacher {name!r}: expected a mapping of parameters, got {spec!r}")
    teacher = get_teacher(name)
    if not teacher.builtin:
        raise InputError(
            f"teacher {name!r} is not a built-in teacher; describe it with a 'kind' "
            "(precomputed, command or torchscript)"
        )
    return teacher, dict(spec or {})


def _check_not_builtin(name: str) -> None:
    try:
        teacher = get_teacher(name)
    except InputError:
        return
    if teacher.builtin:
        raise InputError(
            f"teacher name {name!r} is used by a built-in teacher and an external teacher; "
            "rename the external one"
        )


def teacher_names_for(
    task: str,
    builtin_config: Mapping[str, Mapping[str, Any] | None],
    external_config: Mapping[str, Mapping[str, Any]],
    dataset: str,
) -> list[str]:
    """The teachers that run on one dataset.

    These are the built-ins listed in ``builtin_config`` that serve ``task`` (in config order),
    then the external teachers whose ``tasks`` (default: all) include ``task`` and whose optional
    ``datasets`` list includes ``dataset`` (in config order).

    Args:
        task: the dataset's task.
        builtin_config: built-in teacher name -> parameter overrides.
        external_config: external teacher name -> entry (see :mod:`fusionfm.teacher.external`).
        dataset: the dataset's name.

    Returns:
        Teacher names.

    Raises:
        InputError: unknown task or built-in, a built-in's unknown parameter, an invalid
            external entry (:func:`~fusionfm.teacher.external.check_external_spec`), or a name
            used both by a built-in (listed or registered) and an external teacher.
    """
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    _load_builtin_teachers()
    names: list[str] = []
    for name in builtin_config:
        if name in external_config:
            raise InputError(
                f"teacher name {name!r} is both a built-in and an external teacher; rename one"
            )
        teacher = get_teacher(name)
        if not teacher.builtin:
            raise InputError(f"teacher {name!r} is listed as a built-in but is not one")
        check_teacher_params(name, builtin_config[name])
        if task in teacher.tasks:
            names.append(name)
    for name, spec in external_config.items():
        _check_not_builtin(name)
        check_external_spec(name, spec)
        datasets = spec.get("datasets")
        if task in external_tasks(name, spec) and (datasets is None or dataset in datasets):
            names.append(name)
    return names


@dataclass(frozen=True)
class _StageJob:
    """What every pair of one stage job needs; picklable (sent once to each worker process)."""

    teacher_name: str
    teacher_spec: dict[str, Any] | None
    task: str
    dataset_dir: Path
    image_dir: Path


@dataclass(frozen=True)
class _Pair:
    pair: str
    path_a: str
    path_b: str


def run_teacher_stage(
    dataset_dir: str | os.PathLike[str],
    task: str,
    teacher_name: str,
    teacher_spec: Mapping[str, Any] | None,
    out_images: str | os.PathLike[str],
    out_timing: str | os.PathLike[str],
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Fuse every pair of a built dataset with one teacher.

    Args:
        dataset_dir: the dataset folder holding ``manifest.parquet`` (image paths in it are
            relative to this folder).
        task: the dataset's task; the teacher must serve it.
        teacher_name: the teacher's name.
        teacher_spec: a built-in's parameter overrides (or None), or an external teacher's entry
            (see :func:`resolve_teacher`).
        out_images: folder to create, holding ``<pair>.png`` for every pair fused (skipped pairs
            have none).
        out_timing: Parquet file to create (:data:`fusionfm.io.TIMING_SCHEMA`), one row per pair in
            manifest order: ``ok`` with the fusion's wall time, or ``skipped`` with the reason.
        workers: processes fusing pairs in parallel (1: in this process). The outputs do not
            depend on it.
        progress: show a progress bar over pairs on stderr.

    Returns:
        The timing table, as a reader of ``out_timing`` gets it.

    Raises:
        InputError: a bad teacher entry, a teacher that does not serve ``task``, a missing or
            malformed manifest, a manifest of another task, an unreadable source, or a teacher
            failing on a pair. Neither output exists then (an older complete one is left as it
            was).
    """
    dataset_dir = Path(dataset_dir)
    out_images, out_timing = Path(out_images), Path(out_timing)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if out_timing.resolve().is_relative_to(out_images.resolve()):
        raise ValueError(f"{out_timing}: the timing table must not be inside {out_images}")
    spec = _plain(teacher_spec)
    teacher, params = resolve_teacher(teacher_name, spec)
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    if task not in teacher.tasks:
        served = ", ".join(t for t in TASKS if t in teacher.tasks)
        raise InputError(
            f"teacher {teacher_name!r} does not serve task {task!r} of dataset "
            f"{dataset_dir.name!r} (it serves: {served})"
        )
    pairs = _read_pairs(dataset_dir, task)

    with atomic_path(out_timing) as tmp_timing, atomic_directory(out_images) as tmp_images:
        job = _StageJob(teacher_name, spec, task, dataset_dir, tmp_images)
        bar = tqdm(
            total=len(pairs),
            desc=f"{teacher_name} on {dataset_dir.name}",
            unit="pair",
            file=sys.stderr,
            disable=not progress,
        )
        rows: list[dict[str, Any]] = []
        with bar:
            for row in _fuse_all(job, teacher, params, pairs, workers):
                rows.append(row)
                bar.update(1)
        frame = pd.DataFrame(rows, columns=TIMING_SCHEMA.names)
        frame["seconds"] = frame["seconds"].astype("float64")
        frame["message"] = frame["message"].astype(object)
        write_table(tmp_timing, frame, TIMING_SCHEMA)
        frame = read_table(tmp_timing, TIMING_SCHEMA)
    return frame


def _plain(spec: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A plain, picklable dict copy of a config mapping (Snakemake passes its own types)."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise InputError(f"teacher entry: expected a mapping, got {spec!r}")

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return tuple(plain(v) for v in value)
        if isinstance(value, list):  # includes Snakemake's list subclasses
            return [plain(v) for v in value]
        return value

    return plain(spec)


def _read_pairs(dataset_dir: Path, task: str) -> list[_Pair]:
    manifest = dataset_dir / MANIFEST_NAME
    if not manifest.is_file():
        raise InputError(f"{manifest}: no such manifest (build the dataset first)")
    frame = read_table(manifest, MANIFEST_SCHEMA)
    other = sorted(set(frame["task"]) - {task})
    if other:
        raise InputError(
            f"{manifest}: the dataset's task is {', '.join(other)}, but the stage was asked "
            f"for task {task!r}"
        )
    return [
        _Pair(str(r.pair), str(r.path_a), str(r.path_b))
        for r in frame[["pair", "path_a", "path_b"]].itertuples(index=False)
    ]


def _fuse_all(
    job: _StageJob, teacher: Teacher, params: dict[str, Any], pairs: list[_Pair], workers: int
) -> Iterator[dict[str, Any]]:
    """Timing rows of every pair, in the order of ``pairs``, fused serially or in a pool."""
    workers = min(workers, len(pairs))
    if workers <= 1:
        yield from (_fuse_pair(job, teacher, params, pair) for pair in pairs)
        return
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=fork_context(),
        initializer=_init_worker,
        initargs=(job,),
    )
    try:
        yield from executor.map(_fuse_pair_in_worker, pairs)
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


_WORKER: tuple[_StageJob, Teacher, dict[str, Any]] | None = None
"""A worker process's stage job and resolved teacher (set by :func:`_init_worker`)."""


def _init_worker(job: _StageJob) -> None:
    """Pool initializer: resolve the teacher once per worker process (a ``Teacher`` itself is
    not picklable, and a TorchScript model is loaded per process)."""
    global _WORKER
    teacher, params = resolve_teacher(job.teacher_name, job.teacher_spec)
    _WORKER = (job, teacher, params)


def _fuse_pair_in_worker(pair: _Pair) -> dict[str, Any]:
    if _WORKER is None:
        raise RuntimeError("teacher stage worker used without _init_worker")
    return _fuse_pair(*_WORKER, pair)


def _fuse_pair(
    job: _StageJob, teacher: Teacher, params: dict[str, Any], pair: _Pair
) -> dict[str, Any]:
    """Fuse one pair, write ``<image_dir>/<pair>.png``, return its timing row."""
    a = read_image(job.dataset_dir / pair.path_a)
    b = read_image(job.dataset_dir / pair.path_b)
    start = time.perf_counter()
    try:
        fused = fuse_with(teacher, a, b, job.task, pair.pair, params)
    except SkippedPair as skip:
        return _row(pair.pair, job.teacher_name, STATUS_SKIPPED, 0.0, str(skip))
    seconds = time.perf_counter() - start
    write_image(job.image_dir / f"{pair.pair}.png", fused)
    return _row(pair.pair, job.teacher_name, STATUS_OK, seconds, None)


def fuse_with(
    teacher: Teacher,
    a: np.ndarray,
    b: np.ndarray,
    task: str,
    pair: str,
    params: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Fuse one pair with any teacher (the uniform call of the stage).

    Built-in teachers go through :func:`~fusionfm.teacher.registry.run_teacher` with ``params``
    and never see ``pair``; every other teacher is called as ``teacher.fuse(a, b, task,
    pair=pair)`` and its result is checked the same way.

    Args:
        teacher: the teacher.
        a: source A, ``uint8`` ``(H, W)`` or ``(H, W, 3)``.
        b: source B, same ``H, W``.
        task: the pair's task.
        pair: the pair id.
        params: built-in parameter overrides (external teachers take none).

    Returns:
        ``uint8`` ``(H, W)`` or ``(H, W, 3)``.

    Raises:
        InputError: the teacher fails or returns a malformed image.
        SkippedPair: an external teacher skips the pair.
    """
    if teacher.builtin:
        return run_teacher(teacher.name, a, b, task, params)
    if params:
        raise InputError(f"external teacher {teacher.name!r} takes no parameters, got {params!r}")
    fused = np.asarray(teacher.fuse(a, b, task, pair=pair))
    if fused.dtype != np.uint8 or fused.shape[:2] != a.shape[:2] or fused.ndim not in (2, 3):
        raise InputError(
            f"teacher {teacher.name!r} returned a {fused.dtype} image of shape {fused.shape} for "
            f"pair {pair!r}; expected uint8 of height x width {a.shape[0]}x{a.shape[1]}"
        )
    return fused


def _row(
    pair: str, teacher: str, status: str, seconds: float, message: str | None
) -> dict[str, Any]:
    return {
        "pair": pair,
        "teacher": teacher,
        "status": status,
        "seconds": float(seconds),
        "message": message,
    }


__all__ = [
    "MANIFEST_NAME",
    "STATUS_OK",
    "STATUS_SKIPPED",
    "fuse_with",
    "is_external_spec",
    "resolve_teacher",
    "run_teacher_stage",
    "teacher_names_for",
]
