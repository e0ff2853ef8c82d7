"""Image and table I/O shared by every stage.

Images enter the pipeline through :func:`read_image`, which normalizes every supported file
(png, jpg, bmp, tif; 8- or 16-bit; gray, gray+alpha, RGB, RGBA, palette) to ``uint8`` arrays of
shape ``(H, W)`` or ``(H, W, 3)``, and leave it through :func:`write_image`, which writes
atomically (a temporary file renamed into place) so that a killed job never leaves a
half-written image that a later stage would read.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class InputError(ValueError):
    """Bad user input (an image, a folder, an archive, a config value), with a message that
    names the offending file or key and the problem."""


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as 8-bit gray or RGB.

    16-bit gray images are scaled linearly from 0..65535 to 0..255 (rounded); 16-bit images of
    several channels (RGB, RGBA, gray+alpha) come out of Pillow's decoder as 8-bit already (their
    high byte, at most one level below the rounded value). Alpha channels are dropped; palette
    and gray+alpha images are converted to their color or gray values.

    Args:
        path: image file.

    Returns:
        ``uint8`` array, shape ``(H, W)`` for gray or ``(H, W, 3)`` for RGB.

    Raises:
        InputError: the file is missing, not an image, truncated or in an unsupported mode.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            image.load()
            return _to_uint8_array(image, path)
    except UnidentifiedImageError as err:
        raise InputError(f"{path}: not a readable image ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"{path}: unreadable or truncated image ({err})") from err


def _to_uint8_array(image: Image.Image, path: Path) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        if mode == "I" and values.max(initial=0) <= 255 and values.min(initial=0) >= 0:
            return values.astype(np.uint8)
        return np.clip(np.round(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
    if mode == "F":
        raise InputError(f"{path}: floating-point images are not supported (mode F)")
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    if mode == "LA":
        return np.asarray(image.getchannel("L"), dtype=np.uint8)
    if mode in ("P", "PA"):
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    raise InputError(f"{path}: unsupported image mode {mode!r}")


def image_files_by_stem(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """The image files of a folder by file stem, in natural order (``2`` before ``10``).

    Hidden files and files that are not images (by suffix) are ignored.

    Raises:
        InputError: the folder is missing, or two images share one stem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if not path.is_file():
            continue
        if path.stem in files:
            raise InputError(
                f"{path}: two images named {path.stem!r} in {folder} "
                f"({files[path.stem].name} and {path.name}); keep one"
            )
        files[path.stem] = path
    return files


def natural_key(text: str) -> tuple[list[int | str], str]:
    """Sort key putting ``"img2"`` before ``"img10"`` (digit runs compare as numbers)."""
    parts: list[int | str] = [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text)]
    return parts, text


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write a gray ``(H, W)`` or RGB ``(H, W, 3)`` image atomically.

    Float input is taken on the 0-255 scale, rounded and clipped; the format follows the suffix.
    """
    path = Path(path)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(np.round(array), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"{path}: cannot write an image of shape {array.shape}")
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format=_pil_format(path))


def _pil_format(path: Path) -> str:
    suffix = path.suffix.lower()
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
    if suffix not in formats:
        raise ValueError(f"{path}: unsupported image extension {suffix!r}")
    return formats[suffix]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(err: OSError) -> str:
    return err.strerror or type(err).__name__


def make_parent_folder(path: str | os.PathLike[str]) -> None:
    """Create the folder ``path`` will be written in, or say in one line why it cannot be.

    Raises:
        InputError: the folder cannot be created (a file is in the way, no permission, ...).
    """
    _make_folder(Path(path).parent, f"{path}: cannot create its folder")


def _make_folder(folder: Path, failure: str) -> None:
    """``mkdir -p folder``; on failure an :class:`InputError` ``"<failure> <folder> (<why>)"``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        blocker = next((p for p in (folder, *folder.parents) if p.is_file()), None)
        reason = f"{blocker} is a file, not a folder" if blocker else _reason(err)
        raise InputError(f"{failure} {folder} ({reason})") from err


def check_writable_folder(folder: str | os.PathLike[str]) -> None:
    """Create ``folder`` if needed and check that a file can be written in it, before any work.

    Raises:
        InputError: naming the folder and the reason.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: is a file, expected an output folder")
    _make_folder(folder, "cannot create the output folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise InputError(f"{folder}: cannot write in this folder ({_reason(err)})") from err


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    make_parent_folder(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise InputError(f"{path}: cannot write in {path.parent} ({_reason(err)})") from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise InputError(f"{path}: cannot write it ({_reason(err)})") from err
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on success it replaces ``path``.

    On any exception the temporary directory is removed and ``path`` is left untouched, so a
    failed stage leaves nothing partial behind.
    """
    path = Path(path)
    make_parent_folder(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_current_umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_table(path: str | os.PathLike[str], frame: pd.DataFrame, schema: pa.Schema) -> None:
    """Write ``frame`` as Parquet after checking it against ``schema`` (columns and dtypes)."""
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise ValueError(f"{path}: table is missing columns {missing}")
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_table(path: str | os.PathLike[str], schema: pa.Schema | None = None) -> pd.DataFrame:
    """Read a Parquet table; with ``schema``, check that its columns and types match."""
    table = pq.read_table(path)
    if schema is not None:
        missing = [f.name for f in schema if f.name not in table.schema.names]
        if missing:
            raise InputError(f"{path}: table is missing columns {missing}")
        for field in schema:
            actual = table.schema.field(field.name).type
            if actual != field.type:
                raise InputError(f"{path}: column {field.name!r} is {actual}, expected {field.type}")
    return table.to_pandas()


MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("pair", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("modality_a", pa.string(), nullable=False),
        pa.field("modality_b", pa.string(), nullable=False),
        pa.field("path_a", pa.string(), nullable=False),
        pa.field("path_b", pa.string(), nullable=False),
        pa.field("path_gt", pa.string(), nullable=True),
        pa.field("height", pa.int64(), nullable=False),
        pa.field("width", pa.int64(), nullable=False),
        pa.field("channels_a", pa.int64(), nullable=False),
        pa.field("channels_b", pa.int64(), nullable=False),
    ]
)
"""One row per source pair of a dataset (``results/datasets/{dataset}/manifest.parquet``).

Paths are relative to the directory that holds the manifest; ``path_gt`` is null where the
dataset has no ground truth; ``split`` is ``train`` or ``test``."""


TIMING_SCHEMA = pa.schema(
    [
        pa.field("pair", pa.string(), nullable=False),
        pa.field("teacher", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("seconds", pa.float64(), nullable=False),
        pa.field("message", pa.string(), nullable=True),
    ]
)
"""One row per pair a teacher was asked to fuse (``results/teachers/{dataset}/{teacher}/timing.parquet``).

``status`` is ``ok`` or ``skipped`` (a missing external result, when skipping is configured, with
the reason in ``message``); ``seconds`` is the wall time of that fusion (0 for skips)."""

SCORES_SCHEMA = pa.schema(
    [
        pa.field("pair", pa.string(), nullable=False),
        pa.field("role", pa.string(), nullable=False),
        pa.field("candidate", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=True),
    ]
)
"""Long-form scores of one dataset (``results/scores/{dataset}.parquet``).

``role`` is ``teacher`` (``candidate`` = the teacher's name; the full metric suite, the task
metrics and, where ground truth exists, ``PSNR_gt``/``SSIM_gt``) or ``source`` (``candidate`` =
the modality name; the single-image statistics EN, SD, SF, AG of that source)."""

SELECTION_SCHEMA = pa.schema(
    [
        pa.field("pair", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("teacher", pa.string(), nullable=True),
        pa.field("composite", pa.float64(), nullable=True),
        pa.field("runner_up", pa.string(), nullable=True),
        pa.field("runner_up_composite", pa.float64(), nullable=True),
        pa.field("margin", pa.float64(), nullable=True),
        pa.field("contender_support", pa.float64(), nullable=True),
        pa.field("n_candidates", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("details", pa.string(), nullable=False),
    ]
)
"""One row per pair of a dataset's manifest (``results/selection/{dataset}/selection.parquet``).

``status`` is ``selected`` or ``rejected``. ``teacher`` is the candidate with the highest task
composite (kept for rejected rows too; null only when the pair has no scored candidate);
``composite`` its composite in [0, 1]; ``runner_up``/``runner_up_composite`` the second best
(null with a single candidate), ``margin = composite - runner_up_composite`` (null likewise).
``contender_support`` is the largest share of the profile weight on whose metrics a candidate
within ``min_margin`` of the best beats it (0 when no candidate is that close; null with a single
candidate).
``reason`` says in words why the pair was selected or rejected (``weak``: composite under
``min_composite``; ``contested``: ``contender_support >= 0.5``; ``no candidates``), with the best
candidate's normalized profile metrics. ``details`` is a JSON object
``{metric: {"value": raw, "norm": normalized, "weight": w}}`` for the best candidate (``{}`` when
there is none)."""

REFINE_SCHEMA = pa.schema(
    [
        pa.field("pair", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("teacher", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("diagnoses", pa.list_(pa.string()), nullable=False),
        pa.field("operations", pa.list_(pa.string()), nullable=False),
        pa.field("composite_before", pa.float64(), nullable=True),
        pa.field("composite_after", pa.float64(), nullable=True),
        pa.field("metrics_before", pa.string(), nullable=False),
        pa.field("metrics_after", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
    ]
)
"""One row per selected pair (``results/refine/{dataset}/refine.parquet``).

``status`` is ``refined`` (the refined image passed the accept rule and is the pseudo-label) or
``kept`` (the selected teacher image is the pseudo-label unchanged). ``diagnoses`` lists the
degraded components found (``contrast``, ``detail``, ``saliency``, ``noise``, ``exposure``);
``operations`` the enhancements applied to the accepted image, each with its strength (e.g.
``detail_injection:0.5``), empty when kept. ``composite_before``/``composite_after`` are the task
composites of the selected and the final image under the pair's candidate normalization (equal
when kept). ``metrics_before``/``metrics_after`` are JSON objects ``{metric: raw value}`` of the
profile metrics (``after`` describes the final label, so it equals ``before`` when kept; the best
rejected attempt is described in ``reason``). ``reason`` says why the image was refined or kept.
``label`` is the final pseudo-label image, relative to the directory holding this table."""

EVAL_SCHEMA = pa.schema(
    [
        pa.field("stage", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("pair", pa.string(), nullable=False),
        pa.field("candidate", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=True),
    ]
)
"""Long-form evaluation rows (``results/evaluate/eval.parquet``).

``stage`` is the student stage evaluated (e.g. ``01_mif``: the checkpoint after learning that
stage's task); ``task``/``dataset``/``pair`` the test pair (split ``test`` only). ``candidate`` is
``student``, a teacher's name, or ``pseudolabel`` (the final, refined label of the pair). The
teacher and pseudo-label rows do not depend on the stage; they carry the stage of the evaluation
that computed them (written once per dataset).

``metric`` is a name of the metric suite (``EN`` ... ``PSNR``, plus ``PSNR_gt``/``SSIM_gt`` where
the dataset has ground truth), a task metric (``SAL``, ``WE``, ``FOCUS``), ``composite`` (the
task composite, normalized with that pair's teacher candidates), and for the student
``ms_per_image`` (wall milliseconds of one fusion at the evaluated step count, the fastest
of a few repeats; reading sources and computing metrics excluded), ``ms_per_image@N`` (the same at N solver steps, for each timed step count) and
``parameters`` (the student's parameter count, one row per dataset with ``pair = "*"``)."""
