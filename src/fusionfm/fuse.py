"""Fusing images with a trained student: arrays, files, folders, and the ``fuse`` command.

The student fuses luminance: from ``x_0 = start_image(y_a, y_b)`` it integrates its velocity to
t=1 in a few Euler or Heun steps, conditioned on the sources and the task. Color follows the
teachers' rule (:func:`fusionfm.teacher.color.fuse_color`), so gray, RGB and mixed pairs of any
size work (the network pads to its stride and crops back).

Command line (its arguments are defined in :mod:`fusionfm.cli`, which imports this module only
to run it, so that ``fusionfm metrics`` starts without torch)::

    fusionfm fuse --model M --task ivf A.png B.png -o OUT.png
    fusionfm fuse --model M --task ivf A_DIR B_DIR -o OUT_DIR     # every pair matched by stem
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fusionfm.config import SOLVER_METHODS, START_MODES, TASKS
from fusionfm.io import (
    IMAGE_EXTENSIONS,
    InputError,
    check_writable_folder,
    image_files_by_stem,
    make_parent_folder,
    read_image,
    write_image,
)
from fusionfm.models import TASK_INDEX, FusionUNet
from fusionfm.path import start_image
from fusionfm.solver import check_steps, sample
from fusionfm.teacher.color import fuse_color

_LOG = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
ModelLike = FusionUNet | PathLike


def load_student(model: ModelLike, device: str | torch.device | None = None) -> FusionUNet:
    """The student itself, or loaded from its checkpoint file (on ``device``, default CPU)."""
    if isinstance(model, FusionUNet):
        return model.to(device) if device is not None else model
    from fusionfm.train.checkpoint import load_model

    return load_model(model, device or "cpu")[0]


def _check_source(image: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)
    ):
        raise InputError(
            f"{name}: expected a uint8 (H, W) or (H, W, 3) image, got {array.dtype} {array.shape}"
        )
    return array


@torch.no_grad()
def fuse_luminance(
    model: FusionUNet,
    y_a: np.ndarray,
    y_b: np.ndarray,
    task: str,
    steps: int = 4,
    method: str = "euler",
    start: str | None = None,
) -> np.ndarray:
    """The student's fused luminance.

    Args:
        model: the student.
        y_a: source A luminance, float (H, W), 0-255 scale.
        y_b: source B luminance, float (H, W), 0-255 scale.
        task: the fusion task (picks the task embedding).
        steps: solver steps, 1 to 8.
        method: ``euler`` or ``heun``.
        start: start image mode (default: the one the model was trained with).

    Returns:
        np.ndarray: float64 (H, W), 0-255 scale, clipped.
    """
    if task not in TASK_INDEX:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        ya = torch.as_tensor(np.asarray(y_a) / 255.0, dtype=torch.float32, device=device)[
            None, None
        ]
        yb = torch.as_tensor(np.asarray(y_b) / 255.0, dtype=torch.float32, device=device)[
            None, None
        ]
        x0 = start_image(ya, yb, start or model.flow_start)
        task_id = torch.tensor([TASK_INDEX[task]], device=device)
        x1 = sample(model, x0, {"y_a": ya, "y_b": yb, "task": task_id}, steps, method)
    finally:
        model.train(was_training)
    return (x1[0, 0].clamp(0.0, 1.0).double() * 255.0).cpu().numpy()


def check_learned_task(model: FusionUNet, task: str, allow_untrained_task: bool = False) -> None:
    """Refuse a task the student's checkpoint has not learned (unless allowed).

    Raises:
        InputError: ``task`` is not among the model's learned tasks, naming those it learned.
    """
    learned = model.learned_tasks
    if learned and task not in learned and not allow_untrained_task:
        raise InputError(
            f"the model has not learned task {task!r}; it learned: {', '.join(learned)} "
            "(--allow-untrained-task fuses with it anyway)"
        )


def fuse_images(
    model: ModelLike,
    a: np.ndarray,
    b: np.ndarray,
    task: str,
    steps: int = 4,
    method: str = "euler",
    start: str | None = None,
    allow_untrained_task: bool = False,
) -> np.ndarray:
    """Fuse two source images with the student.

    Args:
        model: the student, or the path of its checkpoint.
        a: source A, uint8 (H, W) or (H, W, 3).
        b: source B, uint8, same H, W.
        task: ``ivf``, ``mif``, ``mef`` or ``mff``.
        steps: solver steps, 1 to 8.
        method: ``euler`` or ``heun``.
        start: start image mode: ``mean``, ``max``, ``a`` or ``b`` (default: the one the model
            was trained with).
        allow_untrained_task: fuse even if the checkpoint has not learned ``task``.

    Returns:
        np.ndarray: uint8, (H, W) when both sources are gray, else (H, W, 3).

    Raises:
        InputError: an unknown task, or one the model has not learned, an unknown method or
            start, steps outside 1..8, sources that are not uint8 images or differ in size, or
            an unloadable checkpoint.
    """
    a, b = _check_source(a, "source A"), _check_source(b, "source B")
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    check_steps(steps)
    if method not in SOLVER_METHODS:
        raise InputError(
            f"method: unknown {method!r} (expected one of {', '.join(SOLVER_METHODS)})"
        )
    if start is not None and start not in START_MODES:
        raise InputError(f"start: unknown {start!r} (expected one of {', '.join(START_MODES)})")
    net = load_student(model)
    check_learned_task(net, task, allow_untrained_task)
    return fuse_color(
        a, b, task, lambda ya, yb: fuse_luminance(net, ya, yb, task, steps, method, start)
    )


def _check_output(path: Path) -> None:
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(
            f"{path}: unsupported output image extension {path.suffix!r} "
            f"(use one of {', '.join(IMAGE_EXTENSIONS)})"
        )


def fuse_files(
    model: ModelLike,
    path_a: PathLike,
    path_b: PathLike,
    out: PathLike,
    task: str,
    steps: int = 4,
    method: str = "euler",
    start: str | None = None,
    allow_untrained_task: bool = False,
) -> np.ndarray:
    """Fuse one pair of image files into ``out`` (written atomically).

    Returns:
        np.ndarray: the fused image.

    Raises:
        InputError: an unreadable source (naming it), sources of different size (naming both,
            width x height), an unsupported output extension, an output that cannot be written
            (checked before fusing), or the errors of :func:`fuse_images`.
    """
    path_a, path_b, out = Path(path_a), Path(path_b), Path(out)
    _check_output(out)
    make_parent_folder(out)
    a, b = read_image(path_a), read_image(path_b)
    if a.shape[:2] != b.shape[:2]:
        raise InputError(
            f"{path_b}: size {b.shape[1]}x{b.shape[0]} differs from {path_a} "
            f"({a.shape[1]}x{a.shape[0]}); the sources of a pair must be registered and equal "
            "in size"
        )
    fused = fuse_images(model, a, b, task, steps, method, start, allow_untrained_task)
    write_image(out, fused)
    return fused


def fuse_folders(
    model: ModelLike,
    dir_a: PathLike,
    dir_b: PathLike,
    out_dir: PathLike,
    task: str,
    steps: int = 4,
    method: str = "euler",
    start: str | None = None,
    progress: bool = True,
    allow_untrained_task: bool = False,
) -> list[Path]:
    """Fuse every pair of images of ``dir_a`` and ``dir_b`` with the same file stem.

    Outputs are ``<out_dir>/<stem>.png``. Stems found in only one folder are skipped with a
    warning.

    Returns:
        list[Path]: the written files, in natural stem order.

    Raises:
        InputError: a missing folder, duplicate stems in a folder, no matched pair, or a bad pair
            (as :func:`fuse_files`; the message names the file).
    """
    files_a, files_b = image_files_by_stem(dir_a), image_files_by_stem(dir_b)
    stems = [stem for stem in files_a if stem in files_b]
    unmatched = sorted(set(files_a) ^ set(files_b))
    if not stems:
        raise InputError(f"{dir_a} and {dir_b}: no image file stems in common")
    if unmatched:
        _LOG.warning(
            "skipping %d image(s) without a partner: %s", len(unmatched), ", ".join(unmatched[:10])
        )
    net = load_student(model)
    check_learned_task(net, task, allow_untrained_task)
    out_dir = Path(out_dir)
    check_writable_folder(out_dir)  # before the first pair's work, not after it
    written = []
    for stem in tqdm(
        stems, desc=f"fuse {task}", unit="pair", disable=not progress, file=sys.stderr
    ):
        target = out_dir / f"{stem}.png"
        fuse_files(
            net,
            files_a[stem],
            files_b[stem],
            target,
            task,
            steps,
            method,
            start,
            allow_untrained_task,
        )
        written.append(target)
    return written


def run_fuse_command(args: argparse.Namespace) -> int:
    """``fusionfm fuse`` (arguments: :func:`fusionfm.cli.build_parser`): a pair of files, or two
    folders fused pair by pair."""
    a, b = Path(args.a), Path(args.b)
    if a.is_dir() != b.is_dir():
        folder, other = (a, b) if a.is_dir() else (b, a)
        raise InputError(f"{folder} is a folder but {other} is not; give two files or two folders")
    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads: expected a positive number, got {args.threads}")
        torch.set_num_threads(args.threads)
    model = load_student(args.model, args.device)
    options = {
        "task": args.task,
        "steps": args.steps,
        "method": args.method,
        "start": args.start,
        "allow_untrained_task": args.allow_untrained_task,
    }
    if a.is_dir():
        written = fuse_folders(model, a, b, args.output, progress=not args.quiet, **options)
        print(f"fused {len(written)} pairs -> {args.output}", file=sys.stderr)
    else:
        fuse_files(model, a, b, args.output, **options)
    return 0


__all__ = [
    "check_learned_task",
    "fuse_files",
    "fuse_folders",
    "fuse_images",
    "fuse_luminance",
    "load_student",
    "run_fuse_command",
]
