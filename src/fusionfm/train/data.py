"""In-memory training data of one fusion task: full-size luminance pairs, random crops per batch.

A task's training pairs are the rows of its datasets' manifests with ``split == "train"`` that
have a final pseudo-label ``<labels_dir>/<pair>.png`` (rejected pairs have none). Every pair is
read once into memory as float32 luminance in [0, 1] (BT.601 Y of RGB images, gray as is):
the sources ``y_a``, ``y_b`` and the label ``x_1``. :meth:`TaskData.sample` draws a batch of
random ``crop x crop`` windows with random horizontal and vertical flips from a seeded
:class:`torch.Generator`, so a batch depends only on the generator's state.

:func:`load_test_pairs` gives the full-size test pairs (raw ``uint8`` images) for evaluation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fusionfm.config import TASKS
from fusionfm.io import MANIFEST_SCHEMA, InputError, read_image, read_table
from fusionfm.teacher.color import luminance

PathLike = str | os.PathLike[str]
DatasetDirs = tuple[PathLike, PathLike]
"""``(dataset_dir, labels_dir)``: the folder holding ``manifest.parquet`` and the folder of final
pseudo-labels ``<pair>.png`` (``results/datasets/<d>`` and ``results/refine/<d>/images``)."""

Batch = dict[str, Tensor]
"""``{"y_a", "y_b", "x_1"}``, each float32 of shape (batch_size, 1, crop, crop)."""

FIELDS: tuple[str, ...] = ("y_a", "y_b", "x_1")


def _luma01(image: np.ndarray) -> Tensor:
    """float32 luminance in [0, 1] of a uint8 gray or RGB image, shape (1, H, W)."""
    return torch.from_numpy((luminance(image) / 255.0).astype(np.float32))[None]


def _read_manifest(dataset_dir: Path, task: str) -> tuple[Path, list[dict]]:
    manifest = dataset_dir / "manifest.parquet"
    if not manifest.is_file():
        raise InputError(f"{manifest}: no such manifest (is {dataset_dir} a built dataset?)")
    frame = read_table(manifest, MANIFEST_SCHEMA)
    other = sorted(set(frame["task"]) - {task})
    if other:
        raise InputError(f"{manifest}: holds pairs of task(s) {other}, expected only {task!r}")
    return manifest, frame.to_dict("records")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")


@dataclass
class TaskData:
    """The training pairs of one task, full size, in memory.

    Attributes:
        task: the fusion task (``ivf``, ``mif``, ``mef``, ``mff``).
        pairs: ``"<dataset>/<pair>"`` names, one per pair.
        y_a: source A luminance per pair, float32 (1, H_i, W_i) in [0, 1].
        y_b: source B luminance per pair, same sizes.
        x_1: pseudo-label luminance per pair, same sizes.
        crop: side of the square crops :meth:`sample` draws (pairs smaller than it were padded
            by edge replication at load time).
    """

    task: str
    pairs: list[str]
    y_a: list[Tensor]
    y_b: list[Tensor]
    x_1: list[Tensor]
    crop: int

    def __post_init__(self) -> None:
        _check_task(self.task)
        if isinstance(self.crop, bool) or not isinstance(self.crop, int) or self.crop < 1:
            raise InputError(f"crop must be a positive integer, got {self.crop!r}")
        if not self.pairs:
            raise InputError(f"task {self.task!r}: no training pairs")
        if not len(self.pairs) == len(self.y_a) == len(self.y_b) == len(self.x_1):
            raise InputError("TaskData: pairs, y_a, y_b and x_1 differ in length")
        for index, name in enumerate(self.pairs):
            shapes = {tuple(t[index].shape) for t in (self.y_a, self.y_b, self.x_1)}
            if len(shapes) != 1 or len(next(iter(shapes))) != 3:
                raise InputError(f"pair {name}: y_a, y_b, x_1 must share one (1, H, W) shape")
            for field in FIELDS:
                getattr(self, field)[index] = _pad_to(getattr(self, field)[index], self.crop)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def num_pixels(self) -> int:
        """Total pixels of all pairs (one channel)."""
        return sum(t.numel() for t in self.y_a)

    def sample(self, batch_size: int, generator: torch.Generator, crop: int | None = None) -> Batch:
        """Random crops with random flips.

        Each item picks a pair uniformly, a uniformly placed window, and flips it horizontally
        and vertically with probability 1/2 each; all draws come from ``generator``.

        Args:
            batch_size: number of crops (>= 1).
            generator: CPU random generator.
            crop: window side (default :attr:`crop`; at most :attr:`crop` unless every pair is
                that large).

        Returns:
            Batch: ``{"y_a", "y_b", "x_1"}``, float32, shape (batch_size, 1, crop, crop), CPU.
        """
        crop = self.crop if crop is None else crop
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        out: dict[str, list[Tensor]] = {field: [] for field in FIELDS}
        for _ in range(batch_size):
            index = int(torch.randint(len(self.pairs), (1,), generator=generator))
            _, height, width = self.y_a[index].shape
            if height < crop or width < crop:
                raise InputError(
                    f"pair {self.pairs[index]}: {height}x{width} is smaller than crop {crop}"
                )
            top = int(torch.randint(height - crop + 1, (1,), generator=generator))
            left = int(torch.randint(width - crop + 1, (1,), generator=generator))
            flips = torch.rand(2, generator=generator)
            dims = [d for d, f in zip((-1, -2), flips.tolist(), strict=True) if f < 0.5]
            for field in FIELDS:
                window = getattr(self, field)[index][:, top : top + crop, left : left + crop]
                out[field].append(window.flip(dims) if dims else window)
        return {field: torch.stack(values).contiguous() for field, values in out.items()}

    def batches(self, count: int, batch_size: int, generator: torch.Generator) -> list[Batch]:
        """``count`` batches from :meth:`sample` (e.g. for the Fisher estimate)."""
        return [self.sample(batch_size, generator) for _ in range(count)]


JOINT = "joint"
"""Name of the joint (all tasks at once) training stage's task (the ``joint`` ablation)."""


@dataclass
class TaskMixture:
    """Several tasks' training pairs drawn together (joint multi-task training).

    Attributes:
        parts: one :class:`TaskData` per task, each task at most once.
    """

    parts: list[TaskData]

    def __post_init__(self) -> None:
        if not self.parts:
            raise InputError("TaskMixture: no task data")
        tasks = [part.task for part in self.parts]
        if len(set(tasks)) != len(tasks):
            raise InputError(f"TaskMixture: a task appears twice in {tasks}")

    @property
    def task(self) -> str:
        """Always :data:`JOINT`."""
        return JOINT

    @property
    def tasks(self) -> list[str]:
        """The mixed tasks, in order."""
        return [part.task for part in self.parts]

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def sample_with_tasks(
        self, batch_size: int, generator: torch.Generator, crop: int | None = None
    ) -> tuple[Batch, list[str]]:
        """Random crops whose task is drawn uniformly per item (tasks weigh equally, whatever
        their number of pairs).

        Returns:
            tuple[Batch, list[str]]: the batch as :meth:`TaskData.sample`, items grouped by task
            in :attr:`tasks` order, and the task of every item.
        """
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        picks = torch.randint(len(self.parts), (batch_size,), generator=generator)
        counts = torch.bincount(picks, minlength=len(self.parts)).tolist()
        batches = [
            part.sample(count, generator, crop)
            for part, count in zip(self.parts, counts, strict=True)
            if count
        ]
        batch = {field: torch.cat([b[field] for b in batches]) for field in FIELDS}
        tasks = [
            part.task for part, count in zip(self.parts, counts, strict=True) for _ in range(count)
        ]
        return batch, tasks


def _pad_to(x: Tensor, size: int) -> Tensor:
    """Pad (1, H, W) by edge replication on the bottom/right to at least ``size`` x ``size``."""
    pad_h, pad_w = max(0, size - x.shape[-2]), max(0, size - x.shape[-1])
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x[None], (0, pad_w, 0, pad_h), mode="replicate")[0]


def _pairs(
    datasets: Iterable[DatasetDirs], task: str, split: str
) -> Iterable[tuple[str, Path, Path, Path, dict]]:
    """``(name, dataset_dir, labels_dir, label_path, row)`` of the manifest rows of ``split``."""
    for dataset_dir, labels_dir in datasets:
        dataset_dir, labels_dir = Path(dataset_dir), Path(labels_dir)
        _, rows = _read_manifest(dataset_dir, task)
        for row in rows:
            if row["split"] != split:
                continue
            name = f"{dataset_dir.name}/{row['pair']}"
            yield name, dataset_dir, labels_dir, labels_dir / f"{row['pair']}.png", row


def load_task_data(
    datasets: Sequence[DatasetDirs], task: str, crop: int, split: str = "train"
) -> TaskData:
    """Load the labelled pairs of ``split`` of every dataset into memory.

    Args:
        datasets: ``(dataset_dir, labels_dir)`` per dataset of the task.
        task: the fusion task; every manifest row must be of this task.
        crop: side of the training crops.
        split: manifest split to load (``train``).

    Returns:
        TaskData: every pair of ``split`` that has a label file, in manifest order.

    Raises:
        InputError: an unknown task, a missing manifest, a manifest of another task, an
            unreadable image, a label whose size differs from its sources, or no labelled pair.
    """
    _check_task(task)
    names, y_a, y_b, x_1 = [], [], [], []
    for name, dataset_dir, _, label_path, row in _pairs(datasets, task, split):
        if not label_path.is_file():
            continue  # rejected by the selection: no pseudo-label
        a = read_image(dataset_dir / row["path_a"])
        b = read_image(dataset_dir / row["path_b"])
        label = read_image(label_path)
        if a.shape[:2] != b.shape[:2]:
            raise InputError(
                f"{dataset_dir / row['path_b']}: size {b.shape[:2]} differs from "
                f"source A {a.shape[:2]}"
            )
        if label.shape[:2] != a.shape[:2]:
            raise InputError(
                f"{label_path}: label size {label.shape[:2]} differs from its sources {a.shape[:2]}"
            )
        names.append(name)
        y_a.append(_luma01(a))
        y_b.append(_luma01(b))
        x_1.append(_luma01(label))
    if not names:
        dirs = ", ".join(str(d) for d, _ in datasets)
        raise InputError(f"task {task!r}: no {split} pair with a pseudo-label in {dirs}")
    return TaskData(task=task, pairs=names, y_a=y_a, y_b=y_b, x_1=x_1, crop=crop)


@dataclass
class EvalPair:
    """One full-size evaluation pair.

    Attributes:
        name: ``"<dataset>/<pair>"``.
        task: the fusion task.
        a: source A, uint8 (H, W) or (H, W, 3).
        b: source B, uint8, same H, W.
        label: the final pseudo-label (uint8) or ``None`` when the pair has none.
        ground_truth: the dataset's ground truth (uint8) or ``None``.
    """

    name: str
    task: str
    a: np.ndarray
    b: np.ndarray
    label: np.ndarray | None
    ground_truth: np.ndarray | None


def load_test_pairs(
    datasets: Sequence[DatasetDirs], task: str, split: str = "test"
) -> list[EvalPair]:
    """Every pair of ``split`` (default ``test``), full size, labelled or not.

    Args:
        datasets: ``(dataset_dir, labels_dir)`` per dataset of the task.
        task: the fusion task.
        split: manifest split.

    Returns:
        list[EvalPair]: in manifest order (may be empty).

    Raises:
        InputError: as :func:`load_task_data`.
    """
    _check_task(task)
    out = []
    for name, dataset_dir, _, label_path, row in _pairs(datasets, task, split):
        gt = row.get("path_gt")
        out.append(
            EvalPair(
                name=name,
                task=task,
                a=read_image(dataset_dir / row["path_a"]),
                b=read_image(dataset_dir / row["path_b"]),
                label=read_image(label_path) if label_path.is_file() else None,
                ground_truth=read_image(dataset_dir / gt) if isinstance(gt, str) and gt else None,
            )
        )
    return out


__all__ = [
    "FIELDS",
    "JOINT",
    "Batch",
    "DatasetDirs",
    "TaskData",
    "TaskMixture",
    "EvalPair",
    "load_task_data",
    "load_test_pairs",
]
