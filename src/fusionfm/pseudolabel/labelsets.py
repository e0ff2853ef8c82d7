"""Pseudo-label sets for the data ablations: the selected teacher's output, or a random teacher's.

The main run trains on the refined labels (``results/refine/<dataset>/images``). The ablations
``no_refiner`` and ``no_selection`` train on a folder of ``<pair>.png`` built here instead:

* ``selected``: the output of the teacher the selection chose, for every selected pair (rejected
  pairs have no label, as in the main run) — the labels before the Fusion Refiner;
* ``random``: for every pair of the manifest, the output of one teacher drawn uniformly among
  those that produced one, seeded by ``(seed, dataset, pair)`` — no selection, no rejection, no
  refinement.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from fusionfm.io import MANIFEST_SCHEMA, SELECTION_SCHEMA, InputError, atomic_directory, read_table

LABEL_SETS: tuple[str, ...] = ("selected", "random")
"""Label sets :func:`build_label_set` builds (``refined`` is the refine stage's own folder)."""

PathLike = str | os.PathLike[str]


def _pair_seed(seed: int, dataset: str, pair: str) -> int:
    digest = hashlib.sha256(f"{seed}/{dataset}/{pair}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def label_sources(
    kind: str,
    manifest: pd.DataFrame,
    selection: pd.DataFrame,
    teacher_images: Mapping[str, PathLike],
    dataset: str,
    seed: int = 0,
) -> dict[str, Path]:
    """Which teacher output becomes each pair's label.

    Args:
        kind: ``selected`` or ``random``.
        manifest: the dataset manifest (``pair`` column).
        selection: the dataset's selection table (``pair``, ``status``, ``teacher``).
        teacher_images: teacher name -> folder of its ``<pair>.png`` outputs.
        dataset: the dataset name (part of the random seed).
        seed: seed of the random draw.

    Returns:
        pair -> the teacher image to use (pairs without one are left out).

    Raises:
        InputError: an unknown kind, or a selected teacher whose output is missing.
    """
    if kind not in LABEL_SETS:
        raise InputError(f"unknown label set {kind!r} (expected one of {', '.join(LABEL_SETS)})")
    out: dict[str, Path] = {}
    if kind == "selected":
        chosen = selection[selection["status"] == "selected"]
        for pair, teacher in zip(chosen["pair"], chosen["teacher"], strict=True):
            if teacher not in teacher_images:
                raise InputError(f"{dataset}/{pair}: selected teacher {teacher!r} has no outputs")
            path = Path(teacher_images[teacher]) / f"{pair}.png"
            if not path.is_file():
                raise InputError(f"{path}: the selected teacher's output is missing")
            out[pair] = path
        return out
    names = sorted(teacher_images)
    for pair in manifest["pair"]:
        available = [t for t in names if (Path(teacher_images[t]) / f"{pair}.png").is_file()]
        if available:
            rng = np.random.default_rng(_pair_seed(seed, dataset, pair))
            out[pair] = Path(teacher_images[available[int(rng.integers(len(available)))]]) / (
                f"{pair}.png"
            )
    return out


def build_label_set(
    kind: str,
    manifest_path: PathLike,
    selection_path: PathLike,
    teacher_images: Mapping[str, PathLike],
    out_dir: PathLike,
    dataset: str,
    seed: int = 0,
) -> dict[str, str]:
    """Write the ``kind`` label set of one dataset as ``<out_dir>/<pair>.png`` (atomically).

    Returns:
        pair -> the teacher whose output was copied.
    """
    manifest = read_table(manifest_path, MANIFEST_SCHEMA)
    selection = read_table(selection_path, SELECTION_SCHEMA)
    sources = label_sources(kind, manifest, selection, teacher_images, dataset, seed)
    teacher_of = {Path(folder).resolve(): name for name, folder in teacher_images.items()}
    with atomic_directory(out_dir) as tmp:
        for pair, source in sources.items():
            shutil.copyfile(source, tmp / f"{pair}.png")
    return {pair: teacher_of[source.parent.resolve()] for pair, source in sources.items()}


__all__ = ["LABEL_SETS", "build_label_set", "label_sources"]
