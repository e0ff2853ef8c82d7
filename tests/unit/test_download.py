"""Downloading and safely extracting dataset archives, over a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import io
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusionfm.config import DatasetSpec, SplitSpec
from fusionfm.data.build import build_dataset
from fusionfm.data.sources import download_archive, safe_extract, scan_pair_folder
from fusionfm.io import InputError


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature of the base)
        pass


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A ThreadingHTTPServer on 127.0.0.1 (free port) serving ``tmp_path/www``; yields (folder, base URL)."""
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(www))
    )
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _png_bytes(value: int, size: tuple[int, int] = (20, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full(size[::-1], value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# The tiny pair folder every good archive holds, under the archive's subdir "Tiny".
TINY = {
    f"Tiny/{modality}/{pair}.png": _png_bytes(10 * i + j)
    for j, modality in enumerate(("ir", "vi"))
    for i, pair in enumerate(("01", "02", "03"))
}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _tar(
    path: Path,
    members: dict[str, bytes],
    mode: str = "w:gz",
    links: dict[str, tuple[bytes, str]] | None = None,
) -> Path:
    """Tar of regular files ``members`` plus ``links``: name -> (tarfile type, target)."""
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_only(folder: Path, names: list[str]) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(names), "temporary files left behind"


# --- download_archive -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_download_verify_extract_and_build(
    tmp_path: Path, server: tuple[Path, str], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    www, base = server
    archive = _zip(www / "tiny.zip", TINY) if kind == "zip" else _tar(www / "tiny.tar.gz", TINY)
    work = tmp_path / "resources"
    dest = work / "tiny"

    assert download_archive(f"{base}/{archive.name}", _sha(archive).upper(), dest) == dest

    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.png")) == sorted(TINY)
    assert (dest / "Tiny" / "vi" / "02.png").read_bytes() == TINY["Tiny/vi/02.png"]
    _assert_only(work, ["tiny"])  # the downloaded archive and temporaries are gone
    assert "100%" in capsys.readouterr().err  # progress bar with a known total

    spec = DatasetSpec.from_dict(
        "tiny",
        {
            "task": "ivf",
            "modalities": ["ir", "vi"],
            "source": "url",
            "url": f"{base}/{archive.name}",
            "sha256": _sha(archive),
            "subdir": "Tiny",
        },
    )
    out = tmp_path / "results"
    frame = build_dataset(
        spec,
        out / "images",
        out / "manifest.parquet",
        SplitSpec(),
        source_root=dest,
        progress=False,
    )
    assert frame["pair"].tolist() == ["01", "02", "03"]
    assert (out / "images" / "ir" / "03.png").is_file()


def test_download_replaces_existing_destination(tmp_path: Path, server: tuple[Path, str]) -> None:
    www, base = server
    archive = _zip(www / "tiny.zip", TINY)
    dest = tmp_path / "resources" / "tiny"
    (dest / "stale").mkdir(parents=True)
    download_archive(f"{base}/tiny.zip", _sha(archive), dest, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == ["Tiny"]


def test_download_file_url_and_content_detection(tmp_path: Path) -> None:
    # a gzip'd tar named .zip: the format comes from the content
    archive = _tar(tmp_path / "misnamed.zip", TINY)
    dest = tmp_path / "out" / "tiny"
    download_archive(archive.as_uri(), _sha(archive), dest, progress=False)
    assert len(scan_pair_folder(dest / "Tiny", ["ir", "vi"])) == 3


def test_download_wrong_sha256_leaves_nothing(tmp_path: Path, server: tuple[Path, str]) -> None:
    www, base = server
    archive = _zip(www / "tiny.zip", TINY)
    work = tmp_path / "resources"
    wrong = "0" * 64
    url = f"{base}/tiny.zip"
    with pytest.raises(InputError) as err:
        download_archive(url, wrong, work / "tiny", progress=False)
    message = str(err.value)
    assert url in message and "sha256 mismatch" in message
    assert f"expected {wrong}" in message and f"got {_sha(archive)}" in message
    _assert_only(work, [])


def test_download_http_error(tmp_path: Path, server: tuple[Path, str]) -> None:
    _, base = server
    work = tmp_path / "resources"
    with pytest.raises(InputError, match=r"/missing.zip: download failed \(HTTP Error 404"):
        download_archive(f"{base}/missing.zip", "0" * 64, work / "x", progress=False)
    _assert_only(work, [])


@pytest.mark.parametrize("url", ["ftp://example.org/a.zip", "/local/path.zip", "data:,hello"])
def test_download_unsupported_url(tmp_path: Path, url: str) -> None:
    with pytest.raises(InputError, match="only http"):
        download_archive(url, "0" * 64, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_download_not_an_archive(tmp_path: Path, server: tuple[Path, str]) -> None:
    www, base = server
    page = www / "page.zip"
    page.write_bytes(b"<html>not an archive</html>")
    work = tmp_path / "resources"
    with pytest.raises(InputError, match="not a zip or tar"):
        download_archive(f"{base}/page.zip", _sha(page), work / "x", progress=False)
    _assert_only(work, [])


# --- unsafe archives --------------------------------------------------------------------------------


def _evil_archives(www: Path, tmp_path: Path) -> dict[str, tuple[Path, str, Path]]:
    """name -> (archive, member that must be named, file that must not appear)."""
    absolute_target = tmp_path / "absolute_target.txt"
    outside = tmp_path / "outside"
    outside.mkdir()
    return {
        "tar-dotdot": (
            _tar(www / "dotdot.tar.gz", {"Tiny/ok.txt": b"ok", "../evil.txt": b"evil"}),
            "../evil.txt",
            tmp_path / "evil.txt",
        ),
        "tar-absolute": (
            _tar(www / "absolute.tar", {str(absolute_target): b"evil"}, mode="w"),
            str(absolute_target),
            absolute_target,
        ),
        "zip-dotdot": (
            _zip(www / "dotdot.zip", {"Tiny/ok.txt": b"ok", "../x": b"evil"}),
            "../x",
            tmp_path / "x",
        ),
        "tar-symlink-outside": (
            _tar(
                www / "symlink.tar.gz",
                {"Tiny/link/pwned.txt": b"evil"},
                links={"Tiny/link": (tarfile.SYMTYPE, str(outside))},
            ),
            "Tiny/link",
            outside / "pwned.txt",
        ),
    }


@pytest.mark.parametrize(
    "case", ["tar-dotdot", "tar-absolute", "zip-dotdot", "tar-symlink-outside"]
)
def test_download_refuses_unsafe_archives(
    tmp_path: Path, server: tuple[Path, str], case: str
) -> None:
    www, base = server
    archive, member, forbidden = _evil_archives(www, tmp_path)[case]
    # the destination sits two levels down so '../x' from it, or from its temporary sibling, lands in tmp_path
    work = tmp_path / "resources"
    with pytest.raises(InputError) as err:
        download_archive(f"{base}/{archive.name}", _sha(archive), work / "dest", progress=False)
    assert f"member {member!r}" in str(err.value)
    # the message names the URL the user gave, not the temporary download it was checked in
    assert str(err.value).startswith(f"{base}/{archive.name}: ")
    assert ".download" not in str(err.value)
    assert not forbidden.exists()
    assert not (work / "evil.txt").exists() and not (work / "x").exists()
    _assert_only(work, [])


@pytest.mark.parametrize(
    ("links", "message"),
    [
        (
            {"a/link": (tarfile.SYMTYPE, "../../../etc/passwd")},
            r"member 'a/link' is a symlink to '../../../etc/passwd' \(outside the archive\)",
        ),
        (
            {"a/link": (tarfile.SYMTYPE, "../a/file.txt")},
            r"member 'a/link' is a symlink to '../a/file.txt'; links are refused",
        ),
        (
            {"a/hard": (tarfile.LNKTYPE, "/etc/passwd")},
            r"member 'a/hard' is a hardlink to '/etc/passwd' \(outside the archive\)",
        ),
        ({"a/dev": (tarfile.CHRTYPE, "")}, r"member 'a/dev' is a special file"),
        ({"a/fifo": (tarfile.FIFOTYPE, "")}, r"member 'a/fifo' is a special file"),
    ],
)
def test_safe_extract_refuses_links_and_special_files(
    tmp_path: Path, links: dict[str, tuple[bytes, str]], message: str
) -> None:
    archive = _tar(tmp_path / "a.tar.xz", {"a/file.txt": b"x"}, mode="w:xz", links=links)
    with pytest.raises(InputError, match=message):
        safe_extract(archive, tmp_path / "dest")
    _assert_only(tmp_path, ["a.tar.xz"])


@pytest.mark.parametrize(
    "name", ["C:/windows/evil.txt", "..\\evil.txt", "a/../../evil.txt", "\\\\server\\share\\x"]
)
def test_safe_extract_refuses_windows_and_nested_escapes(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "a.zip", {name: b"evil"})
    with pytest.raises(InputError, match="member"):
        safe_extract(archive, tmp_path / "dest")
    _assert_only(tmp_path, ["a.zip"])


def test_safe_extract_refuses_zip_symlink(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("a/link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InputError, match=r"member 'a/link' is a symlink"):
        safe_extract(archive, tmp_path / "dest")
    _assert_only(tmp_path, ["link.zip"])


@pytest.mark.parametrize("kind", ["zip", "w:bz2"])
def test_safe_extract_size_cap(tmp_path: Path, kind: str) -> None:
    members = {"a/big.bin": bytes(5000), "a/small.bin": b"1"}
    archive = (
        _zip(tmp_path / "bomb.zip", members)
        if kind == "zip"
        else _tar(tmp_path / "bomb.tar.bz2", members, mode=kind)
    )
    with pytest.raises(InputError, match="more than 4096 bytes|past the limit of 4096 bytes"):
        safe_extract(archive, tmp_path / "dest", max_bytes=4096)
    _assert_only(tmp_path, [archive.name])


def test_safe_extract_plain_tar_with_dot_prefix_and_dirs(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "plain.tar",
        {"./Tiny/ir/01.png": TINY["Tiny/ir/01.png"]},
        mode="w",
        links={"./Tiny/vi": (tarfile.DIRTYPE, "")},
    )
    dest = safe_extract(archive, tmp_path / "dest")
    assert (dest / "Tiny" / "ir" / "01.png").read_bytes() == TINY["Tiny/ir/01.png"]
    assert (dest / "Tiny" / "vi").is_dir()


def test_safe_extract_truncated_archive(tmp_path: Path) -> None:
    whole = _tar(tmp_path / "whole.tar.gz", TINY).read_bytes()
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(
        InputError, match=r"cut.tar.gz: (broken or unreadable archive|not a zip or tar)"
    ):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
