"""Where the source pairs of a dataset come from: a local folder or a downloaded archive.

A pair folder holds one subfolder per modality (and optionally a ground-truth folder); the two
images of a pair have the same file name stem, e.g. ``ir/0001.png`` and ``vi/0001.jpg``.
Archives are downloaded with a progress bar, checked against their sha256 and extracted by
:func:`safe_extract`, which checks every member itself and refuses anything that could write
outside the destination.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from fusionfm.io import (
    IMAGE_EXTENSIONS,
    InputError,
    atomic_directory,
    image_files_by_stem,
    natural_key,
)

MAX_EXTRACTED_BYTES = 20 * 1024**3
"""Default cap on the total size an archive may expand to (stops zip bombs)."""

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PairFiles:
    """The files of one source pair.

    Attributes:
        pair: pair id, the common file name stem.
        path_a: image of modality A.
        path_b: image of modality B.
        path_gt: ground-truth image, or None when the dataset has none.
    """

    pair: str
    path_a: Path
    path_b: Path
    path_gt: Path | None = None


def scan_pair_folder(
    root: str | os.PathLike[str],
    modalities: Sequence[str],
    ground_truth: str | None = None,
) -> list[PairFiles]:
    """Match the images of two modality folders (and a ground-truth folder) by file name stem.

    Images are files with one of :data:`fusionfm.io.IMAGE_EXTENSIONS` (any case); hidden files
    and other files are ignored.

    Args:
        root: folder holding one subfolder per modality.
        modalities: names of the folders of modality A and B.
        ground_truth: name of the folder of reference images, or None. When given, every pair
            needs one; extra reference images are ignored.

    Returns:
        One entry per pair, sorted naturally by pair id (``2`` before ``10``).

    Raises:
        InputError: ``root`` or a folder is missing or holds no image, two images in one folder
            share a stem, or an image has no counterpart in the other folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder does not exist or is not a folder")
    if len(modalities) != 2:
        raise InputError(f"{root}: expected two modality folders, got {list(modalities)}")
    folder_a, folder_b = (_subfolder(root, name, "modality") for name in modalities)
    images_a, images_b = _index_images(folder_a), _index_images(folder_b)
    for images, other_images, other_folder in (
        (images_a, images_b, folder_b),
        (images_b, images_a, folder_a),
    ):
        unmatched = sorted(set(images) - set(other_images), key=natural_key)
        if unmatched:
            more = (
                f" (and {len(unmatched) - 1} more unmatched image(s))" if len(unmatched) > 1 else ""
            )
            raise InputError(
                f"{images[unmatched[0]]}: no counterpart named '{unmatched[0]}.<ext>' in {other_folder}{more}"
            )
    images_gt: dict[str, Path] = {}
    if ground_truth is not None:
        folder_gt = _subfolder(root, ground_truth, "ground-truth")
        images_gt = _index_images(folder_gt)
        missing = sorted(set(images_a) - set(images_gt), key=natural_key)
        if missing:
            more = f" (and {len(missing) - 1} more pair(s) without one)" if len(missing) > 1 else ""
            raise InputError(
                f"{images_a[missing[0]]}: no ground-truth image named '{missing[0]}.<ext>' in {folder_gt}{more}"
            )
    return [
        PairFiles(
            pair, images_a[pair], images_b[pair], images_gt.get(pair) if ground_truth else None
        )
        for pair in sorted(images_a, key=natural_key)
    ]


def _subfolder(root: Path, name: str, kind: str) -> Path:
    folder = root / name
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise InputError(
            f"{folder}: {kind} folder {name!r} is missing (folders in {root}: {', '.join(found) or 'none'})"
        )
    return folder


def _index_images(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` by stem; raises on duplicate stems and on an empty folder."""
    images = image_files_by_stem(folder)
    if not images:
        raise InputError(
            f"{folder}: no images ({', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)})"
        )
    return images


def list_source_files(
    root: str | os.PathLike[str], modalities: Sequence[str], ground_truth: str | None = None
) -> list[Path]:
    """Every image file a ``dir`` dataset is built from, without checking the pairing.

    The workflow declares these as inputs so that editing a source image reruns the dataset;
    missing folders are skipped here and reported by :func:`scan_pair_folder` when the job runs.
    """
    files: list[Path] = []
    for name in [*modalities, *([ground_truth] if ground_truth else [])]:
        folder = Path(root) / name
        if folder.is_dir():
            files.extend(image_files_by_stem(folder).values())
    return files


def download_archive(
    url: str,
    sha256: str,
    dest_dir: str | os.PathLike[str],
    timeout: float = 60,
    progress: bool = True,
) -> Path:
    """Download an archive, verify its sha256 and extract it safely into ``dest_dir``.

    The archive is streamed into a temporary file beside ``dest_dir`` and removed afterwards;
    ``dest_dir`` appears (replacing an older one) only once extraction is complete.

    Args:
        url: ``http://``, ``https://`` or ``file://`` URL of a zip or tar archive.
        sha256: expected sha256 of the archive (hex).
        dest_dir: folder to extract into.
        timeout: seconds to wait for the server on connect and on each read.
        progress: show a progress bar on stderr.

    Returns:
        ``dest_dir``.

    Raises:
        InputError: an unsupported URL, a failed download, a sha256 mismatch or an unsafe or
            broken archive. Nothing is left behind in any of these cases.
    """
    dest_dir = Path(dest_dir)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise InputError(f"{url}: only http(s):// and file:// URLs are supported")
    expected = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise InputError(f"{url}: expected sha256 {sha256!r} is not 64 hex digits")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{dest_dir.name}.", suffix=".download", dir=dest_dir.parent
    )
    archive = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _fetch(url, out, timeout, progress)
        if actual != expected:
            raise InputError(f"{url}: sha256 mismatch: expected {expected}, got {actual}")
        safe_extract(archive, dest_dir, source=url)  # errors name the URL, not the temporary
    finally:
        archive.unlink(missing_ok=True)
    return dest_dir


def _fetch(url: str, out: IO[bytes], timeout: float, progress: bool) -> str:
    """Stream ``url`` into ``out``; return the hex sha256 of what was received."""
    digest = hashlib.sha256()
    received = 0
    try:
        # The scheme was checked by the caller, so urlopen cannot be steered to other handlers.
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            name = Path(urllib.parse.urlsplit(url).path).name or url
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=name,
                file=sys.stderr,
                disable=not progress,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise InputError(f"{url}: download incomplete ({received} of {total} bytes)")
    except (urllib.error.URLError, OSError, ValueError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"{url}: download failed ({err})") from err
    return digest.hexdigest()


def safe_extract(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    max_bytes: int = MAX_EXTRACTED_BYTES,
    source: str | None = None,
) -> Path:
    """Extract a zip or tar archive (plain, gz, bz2, xz), refusing anything unsafe.

    The format is detected from the content, not the file name. Every member is checked before
    it is written: absolute paths, drive letters, ``..`` components, links of any kind and
    special files (devices, fifos) are refused, and so is an archive that expands beyond
    ``max_bytes``. Files are written with default permissions. Extraction goes to a temporary
    folder that replaces ``dest`` only when complete.

    Args:
        archive: the archive file.
        dest: folder to extract into (replaced if it exists).
        max_bytes: cap on the total size of the extracted files.
        source: what error messages call the archive (default: its path), e.g. the URL it was
            downloaded from.

    Returns:
        ``dest``.

    Raises:
        InputError: the file is not a readable zip/tar archive, or a member is unsafe (the
            message names the member and the problem). ``dest`` is then left untouched.
    """
    archive, dest = Path(archive), Path(dest)
    shown = source or str(archive)
    if not archive.is_file():
        raise InputError(f"{shown}: no such archive")
    if zipfile.is_zipfile(archive):
        extract = _extract_zip
    elif tarfile.is_tarfile(archive):
        extract = _extract_tar
    else:
        raise InputError(f"{shown}: not a zip or tar (.tar, .tar.gz, .tar.bz2, .tar.xz) archive")
    with atomic_directory(dest) as tmp:
        try:
            extract(archive, tmp, _Budget(shown, max_bytes))
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, RuntimeError) as err:
            if isinstance(err, InputError):
                raise
            raise InputError(f"{shown}: broken or unreadable archive ({err})") from err
    return dest


class _Budget:
    """Counts extracted bytes against the cap; ``source`` names the archive in messages."""

    def __init__(self, source: str, max_bytes: int) -> None:
        self.source, self.max_bytes, self.used = source, max_bytes, 0

    def spend(self, n: int, member: str) -> None:
        self.used += n
        if self.used > self.max_bytes:
            raise InputError(
                f"{self.source}: member {member!r} takes the extracted size past the limit of "
                f"{self.max_bytes} bytes (zip bomb?)"
            )


def _member_target(source: str, root: Path, name: str) -> Path | None:
    """The path ``name`` extracts to under ``root``, or None for the archive's root entry."""
    if "\0" in name:
        raise InputError(f"{source}: member {name!r} has a NUL character in its name")
    # Backslashes count as separators so that Windows-made archives cannot smuggle '..\\'.
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise InputError(f"{source}: member {name!r} has an absolute path")
    parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]
    if ".." in parts:
        raise InputError(
            f"{source}: member {name!r} has a '..' component (would write outside the folder)"
        )
    if not parts:
        return None
    target = root.joinpath(*parts)
    # Defence in depth: nothing extracted is a link, so this holds unless the checks above miss a case.
    if not target.resolve().is_relative_to(root.resolve()):
        raise InputError(f"{source}: member {name!r} resolves outside the destination")
    return target


def _copy_member(source: IO[bytes], target: Path, budget: _Budget, name: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            budget.spend(len(chunk), name)
            out.write(chunk)


def _extract_zip(archive: Path, root: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # all names are checked before anything is written
            _member_target(budget.source, root, info.filename)
            # Unix file type bits; many writers store permission bits only (type 0 = regular file).
            file_type = stat.S_IFMT(info.external_attr >> 16)
            if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
                kind = "a symlink" if file_type == stat.S_IFLNK else "a special file"
                raise InputError(
                    f"{budget.source}: member {info.filename!r} is {kind}; links and special files are refused"
                )
        if sum(info.file_size for info in infos) > budget.max_bytes:
            raise InputError(
                f"{budget.source}: would extract to more than {budget.max_bytes} bytes (zip bomb?)"
            )
        for info in infos:
            target = _member_target(budget.source, root, info.filename)
            if target is None:
                continue
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as source:
                _copy_member(source, target, budget, info.filename)


def _extract_tar(archive: Path, root: Path, budget: _Budget) -> None:
    # "r:*" detects gzip/bz2/xz from the content; members are checked one by one as they stream.
    with tarfile.open(archive, mode="r:*") as tf:
        for member in tf:
            target = _member_target(budget.source, root, member.name)
            if member.issym() or member.islnk():
                kind = "symlink" if member.issym() else "hardlink"
                raise InputError(
                    f"{budget.source}: member {member.name!r} is a {kind} to {member.linkname!r}"
                    f"{_outside_note(member)}; links are refused"
                )
            if not (member.isreg() or member.isdir()):
                raise InputError(
                    f"{budget.source}: member {member.name!r} is a special file (device, fifo or other); refused"
                )
            if target is None:
                continue
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            source = tf.extractfile(member)
            if source is None:  # cannot happen for a regular file; guard anyway
                raise InputError(f"{budget.source}: member {member.name!r} could not be read")
            with source:
                _copy_member(source, target, budget, member.name)


def _outside_note(member: tarfile.TarInfo) -> str:
    """' (outside the archive)' when a link's target leaves the extracted tree, else ''."""
    link = member.linkname.replace("\\", "/")
    base = os.path.dirname(member.name) if member.issym() else ""
    resolved = os.path.normpath(os.path.join(base, link))
    if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
        return " (outside the archive)"
    return ""
