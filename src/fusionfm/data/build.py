"""Build one dataset: a normalized copy of its pairs plus a manifest table.

Whatever the source (generated, a local folder, an extracted archive), the output is the same:
``<out_images>/<modality>/<pair>.png`` for both modalities, ``<out_images>/gt/<pair>.png`` where
ground truth exists, and a Parquet manifest (:data:`fusionfm.io.MANIFEST_SCHEMA`) with one row per
pair, its train/test split, its image paths relative to the manifest's folder, its size and the
channel count of each source (1 gray, 3 RGB). Both outputs are written to temporary locations and
moved into place only when the whole dataset is complete.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from fusionfm.config import GROUND_TRUTH_FOLDER, TASKS, DatasetSpec, SplitSpec
from fusionfm.data.sources import scan_pair_folder
from fusionfm.io import (
    MANIFEST_SCHEMA,
    InputError,
    atomic_directory,
    atomic_path,
    read_image,
    read_table,
    write_image,
    write_table,
)

TRAIN, TEST = "train", "test"


def archive_folders(root: Path, depth: int = 3, limit: int = 20) -> list[str]:
    """The folders of an extracted archive, relative to its root, at most ``depth`` deep
    (``"(none)"`` for an archive without folders)."""
    found = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_dir() and len(p.relative_to(root).parts) <= depth
    )
    if not found:
        return ["(none)"]
    return found[:limit] + ([f"... ({len(found) - limit} more)"] if len(found) > limit else [])


def assign_splits(pairs: Sequence[str], test_fraction: float, seed: int) -> dict[str, str]:
    """Split pair ids into train and test, deterministically.

    The sorted ids are permuted with ``np.random.default_rng(seed)``; the first
    ``n_test = round(test_fraction * n)`` (halves round up) go to test. When ``n >= 2`` and
    ``0 < test_fraction < 1`` each side gets at least one pair.

    Args:
        pairs: pair ids (unique).
        test_fraction: fraction of pairs for the test split, in [0, 1].
        seed: seed of the permutation.

    Returns:
        ``{pair: "train" | "test"}``, in sorted pair order.

    Raises:
        ValueError: duplicate ids or a fraction outside [0, 1].
    """
    ids = sorted(pairs)
    if len(set(ids)) != len(ids):
        raise ValueError("assign_splits: pair ids are not unique")
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"assign_splits: test_fraction {test_fraction} is not in [0, 1]")
    n = len(ids)
    # floor(x + 0.5) rather than round(): Python's round() sends halves to even (2.5 -> 2).
    n_test = math.floor(test_fraction * n + 0.5)
    if n >= 2 and 0.0 < test_fraction < 1.0:
        n_test = min(max(n_test, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    test = {ids[i] for i in order[:n_test]}
    return {pair: TEST if pair in test else TRAIN for pair in ids}


@dataclass(frozen=True)
class _LoadedPair:
    """The decoded images of one pair and where each came from (for error messages)."""

    pair: str
    a: np.ndarray
    b: np.ndarray
    gt: np.ndarray | None
    origin_a: str
    origin_b: str
    origin_gt: str | None


def build_dataset(
    spec: DatasetSpec,
    out_images: str | os.PathLike[str],
    out_manifest: str | os.PathLike[str],
    split: SplitSpec,
    source_root: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Normalize a dataset's pairs into ``out_images`` and write its manifest.

    Args:
        spec: the dataset.
        out_images: folder to create: ``<modality>/<pair>.png`` and ``gt/<pair>.png`` (8-bit PNG,
            gray or RGB).
        out_manifest: Parquet file to create (:data:`fusionfm.io.MANIFEST_SCHEMA`); its image paths
            are relative to its folder.
        split: the train/test split (``spec.test_fraction`` overrides its fraction).
        source_root: (dir, url) folder holding the modality folders; defaults to ``spec.path``
            for ``dir``. For ``url`` it is the extracted archive (required), and ``spec.subdir``
            is appended.
        progress: show a progress bar over pairs on stderr.

    Returns:
        The manifest, one row per pair in natural pair order.

    Raises:
        InputError: an unknown task or source, a missing or malformed source folder, an
            unreadable image, or a pair whose images differ in size. Neither output exists then
            (an older complete one is left as it was).
    """
    if spec.task not in TASKS:  # DatasetSpec checks this too; guard against hand-made specs
        raise InputError(
            f"datasets.{spec.name}.task: unknown task {spec.task!r} (expected one of {', '.join(TASKS)})"
        )
    out_images, out_manifest = Path(out_images), Path(out_manifest)
    if out_manifest.resolve().is_relative_to(out_images.resolve()):
        raise ValueError(
            f"{out_manifest}: the manifest must not be inside the image folder {out_images}"
        )
    split = spec.split_with(split)
    loaded, total = _load_pairs(spec, source_root)
    image_dir = Path(os.path.relpath(out_images.resolve(), out_manifest.parent.resolve()))

    with atomic_path(out_manifest) as tmp_manifest, atomic_directory(out_images) as tmp_images:
        rows: list[dict[str, object]] = []
        seen: set[str] = set()
        bar = tqdm(
            loaded, total=total, desc=spec.name, unit="pair", file=sys.stderr, disable=not progress
        )
        for item in bar:
            _check_pair_id(spec, item.pair, seen)
            seen.add(item.pair)
            _check_same_size(item)
            files = {spec.modalities[0]: item.a, spec.modalities[1]: item.b}
            if item.gt is not None:
                files[GROUND_TRUTH_FOLDER] = item.gt
            for folder, image in files.items():
                write_image(tmp_images / folder / f"{item.pair}.png", image)
            rows.append(
                {
                    "pair": item.pair,
                    "task": spec.task,
                    "modality_a": spec.modalities[0],
                    "modality_b": spec.modalities[1],
                    "path_a": (image_dir / spec.modalities[0] / f"{item.pair}.png").as_posix(),
                    "path_b": (image_dir / spec.modalities[1] / f"{item.pair}.png").as_posix(),
                    "path_gt": None
                    if item.gt is None
                    else (image_dir / GROUND_TRUTH_FOLDER / f"{item.pair}.png").as_posix(),
                    "height": item.a.shape[0],
                    "width": item.a.shape[1],
                    "channels_a": _channels(item.a),
                    "channels_b": _channels(item.b),
                }
            )
        if not rows:
            raise InputError(f"datasets.{spec.name}: no pairs")
        splits = assign_splits([row["pair"] for row in rows], split.test_fraction, split.seed)  # type: ignore[misc]
        for row in rows:
            row["split"] = splits[row["pair"]]  # type: ignore[index]
        frame = pd.DataFrame(rows, columns=MANIFEST_SCHEMA.names)
        for column in ("height", "width", "channels_a", "channels_b"):
            frame[column] = frame[column].astype("int64")
        frame["path_gt"] = frame["path_gt"].astype(object)
        write_table(tmp_manifest, frame, MANIFEST_SCHEMA)
        # Return what a reader of the manifest gets (same dtypes and nulls), not the draft frame.
        frame = read_table(tmp_manifest, MANIFEST_SCHEMA)
    return frame


def _load_pairs(
    spec: DatasetSpec, source_root: str | os.PathLike[str] | None
) -> tuple[Iterator[_LoadedPair], int]:
    """The pairs of ``spec`` as a lazy iterator (one pair in memory at a time) and their count."""
    if spec.source == "synthetic":
        return _synthetic_pairs(spec), spec.synthetic.pairs
    if spec.source == "dir":
        root = Path(source_root if source_root is not None else spec.path)  # type: ignore[arg-type]
    elif spec.source == "url":
        if source_root is None:
            raise InputError(
                f"datasets.{spec.name}: source 'url' needs source_root (the extracted archive)"
            )
        root = Path(source_root) / spec.subdir if spec.subdir else Path(source_root)
        if spec.subdir and not root.is_dir():
            raise InputError(
                f"datasets.{spec.name}.subdir: {spec.subdir!r} is not a folder of the archive "
                f"{spec.url}; its folders are: {', '.join(archive_folders(Path(source_root)))}"
            )
    else:
        raise InputError(f"datasets.{spec.name}.source: unknown source {spec.source!r}")
    files = scan_pair_folder(root, spec.modalities, spec.ground_truth)

    def read() -> Iterator[_LoadedPair]:
        for f in files:
            yield _LoadedPair(
                pair=f.pair,
                a=_drop_gray_rgb(read_image(f.path_a)),
                b=_drop_gray_rgb(read_image(f.path_b)),
                gt=None if f.path_gt is None else _drop_gray_rgb(read_image(f.path_gt)),
                origin_a=str(f.path_a),
                origin_b=str(f.path_b),
                origin_gt=None if f.path_gt is None else str(f.path_gt),
            )

    return read(), len(files)


def _synthetic_pairs(spec: DatasetSpec) -> Iterator[_LoadedPair]:
    from fusionfm.data.synthetic import generate_pairs  # the generators are only needed here

    s = spec.synthetic
    for item in generate_pairs(spec.task, spec.modalities, s.pairs, s.height, s.width, s.seed):
        where = f"synthetic {spec.task} pair {item.pair!r}"
        yield _LoadedPair(
            pair=item.pair,
            a=np.asarray(item.a),
            b=np.asarray(item.b),
            gt=None if item.gt is None else np.asarray(item.gt),
            origin_a=f"{where} ({spec.modalities[0]})",
            origin_b=f"{where} ({spec.modalities[1]})",
            origin_gt=None if item.gt is None else f"{where} (gt)",
        )


def _drop_gray_rgb(image: np.ndarray) -> np.ndarray:
    """Store RGB images whose three channels are equal as gray (lossless; many sets ship gray as RGB)."""
    if (
        image.ndim == 3
        and np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 0], image[..., 2])
    ):
        return np.ascontiguousarray(image[..., 0])
    return image


def _check_pair_id(spec: DatasetSpec, pair: str, seen: set[str]) -> None:
    if (
        not isinstance(pair, str)
        or not pair
        or pair.startswith(".")
        or any(c in pair for c in "/\\\0")
    ):
        raise InputError(f"datasets.{spec.name}: pair id {pair!r} cannot be used as a file name")
    if pair in seen:
        raise InputError(f"datasets.{spec.name}: pair id {pair!r} occurs twice")


def _check_same_size(item: _LoadedPair) -> None:
    images = [(item.origin_a, item.a), (item.origin_b, item.b)]
    if item.gt is not None:
        images.append((item.origin_gt or "ground truth", item.gt))
    for origin, image in images:
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise InputError(
                f"{origin}: expected a gray (H, W) or RGB (H, W, 3) image, got shape {image.shape}"
            )
    (origin_ref, ref), *others = images
    for origin, image in others:
        if image.shape[:2] != ref.shape[:2]:
            raise InputError(
                f"pair {item.pair!r}: images differ in size: {origin_ref} is {_size(ref)} but {origin} is "
                f"{_size(image)} (width x height)"
            )


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else int(image.shape[2])
