"""Building a dataset: specs, splits, the normalized copy and its manifest, and failure cleanup."""

from __future__ import annotations

import hashlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fusionfm.config import DatasetSpec, SplitSpec
from fusionfm.data.build import assign_splits, build_dataset
from fusionfm.io import MANIFEST_SCHEMA, InputError, read_image, read_table

RNG = np.random.default_rng(0)
H, W = 24, 32


def _save(path: Path, array: np.ndarray, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _gray(h: int = H, w: int = W) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def _rgb(h: int = H, w: int = W) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _dir_spec(path: Path, **extra: object) -> DatasetSpec:
    return DatasetSpec.from_dict(
        "tiny",
        {"task": "ivf", "modalities": ["ir", "vi"], "source": "dir", "path": str(path), **extra},
    )


def _outputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    out = tmp_path / "out"
    return out, out / "images", out / "manifest.parquet"


def _assert_nothing_written(out: Path) -> None:
    leftovers = sorted(p.name for p in out.rglob("*")) if out.exists() else []
    assert leftovers == [], f"left behind in {out}: {leftovers}"


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def good_folder(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """Mixed formats, bit depths and channel counts; returns the folder and the expected images."""
    root = tmp_path / "src"
    gray16 = RNG.integers(0, 65536, (H, W), dtype=np.uint16)
    rgba = RNG.integers(0, 256, (H, W, 4), dtype=np.uint8)
    rgb_bmp, rgb_tif, gray_png, gray_bmp = _rgb(), _rgb(), _gray(), _gray()
    _save(root / "ir" / "1.png", gray_png)
    _save(root / "vi" / "1.JPG", _rgb(), quality=95)
    _save(root / "ir" / "2.tif", gray16)  # 16-bit gray TIFF
    _save(root / "vi" / "2.png", rgba)  # RGBA: alpha dropped
    _save(root / "ir" / "10.bmp", gray_bmp)
    _save(root / "vi" / "10.tiff", rgb_tif)
    _save(root / "ir" / "3.jpeg", _gray())
    _save(root / "vi" / "3.png", gray16)  # 16-bit gray PNG
    _save(root / "ir" / "4.png", np.repeat(gray_png[:, :, None], 3, axis=2))  # gray stored as RGB
    _save(root / "vi" / "4.bmp", rgb_bmp)
    (root / "ir" / "notes.txt").write_text("ignored")
    (root / "vi" / ".DS_Store").write_bytes(b"\0\1")
    expected = {
        "ir/1": gray_png,
        "ir/2": np.round(gray16 * (255 / 65535)).astype(np.uint8),
        "vi/2": rgba[:, :, :3],
        "ir/10": gray_bmp,
        "vi/10": rgb_tif,
        "ir/4": gray_png,
        "vi/4": rgb_bmp,
    }
    return root, expected


# --- DatasetSpec / SplitSpec ----------------------------------------------------------------------


def test_dataset_spec_defaults() -> None:
    spec = DatasetSpec.from_dict(
        "syn", {"task": "mef", "modalities": ["under", "over"], "source": "synthetic"}
    )
    assert spec.modalities == ("under", "over")
    assert spec.subdir == "" and spec.ground_truth is None and spec.test_fraction is None
    assert (
        spec.synthetic.pairs,
        spec.synthetic.height,
        spec.synthetic.width,
        spec.synthetic.seed,
    ) == (8, 128, 160, 0)
    assert spec.split_with(SplitSpec(0.5, 3)) == SplitSpec(0.5, 3)
    override = DatasetSpec.from_dict(
        "s",
        {
            "task": "mef",
            "modalities": ["under", "over"],
            "source": "synthetic",
            "test_fraction": 0.1,
        },
    )
    assert override.split_with(SplitSpec(0.5, 3)) == SplitSpec(0.1, 3)


def test_split_spec_from_dict() -> None:
    assert SplitSpec.from_dict({}) == SplitSpec(0.25, 0)
    assert SplitSpec.from_dict({"test_fraction": 0.5, "seed": 7}) == SplitSpec(0.5, 7)
    with pytest.raises(InputError, match=r"split.test_fraction: 1.5 is not in \[0, 1\]"):
        SplitSpec.from_dict({"test_fraction": 1.5})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"task": "xyz", "modalities": ["a", "b"], "source": "dir", "path": "/x"},
            r"datasets.bad.task: unknown task 'xyz'",
        ),
        (
            {"task": "ivf", "modalities": ["ir"], "source": "synthetic"},
            r"datasets.bad.modalities: expected exactly two",
        ),
        ({"task": "ivf", "modalities": ["ir", "gt"], "source": "synthetic"}, r"'gt' is reserved"),
        (
            {"task": "ivf", "modalities": ["ir", "ir"], "source": "synthetic"},
            r"A and B are the same folder 'ir'",
        ),
        (
            {"task": "ivf", "modalities": ["ir", "v i"], "source": "synthetic"},
            r"'v i' is not a valid folder name",
        ),
        (
            {"task": "ivf", "modalities": ["ir", "vi"], "source": "ftp"},
            r"datasets.bad.source: unknown source 'ftp'",
        ),
        (
            {"task": "ivf", "modalities": ["ir", "vi"], "source": "dir"},
            r"source 'dir' needs a 'path'",
        ),
        (
            {"task": "ivf", "modalities": ["ir", "vi"], "source": "url", "url": "http://x/a.zip"},
            r"datasets.bad.sha256",
        ),
        (
            {
                "task": "ivf",
                "modalities": ["ir", "vi"],
                "source": "url",
                "url": "https://x/a.zip",
                "sha256": "0" * 64,
                "subdir": "../up",
            },
            r"subdir: '../up' must be a relative folder",
        ),
        (
            {"task": "ivf", "modalities": ["ir", "vi"], "source": "synthetic", "colour": 1},
            r"datasets.bad: unknown key\(s\) colour",
        ),
        (
            {
                "task": "ivf",
                "modalities": ["ir", "vi"],
                "source": "synthetic",
                "synthetic": {"height": 8},
            },
            r"datasets.bad.synthetic.height: 8 is below the minimum 32",
        ),
        ({"modalities": ["ir", "vi"], "source": "synthetic"}, r"missing required key\(s\) task"),
        (
            {
                "task": "ivf",
                "modalities": ["ir", "vi"],
                "source": "url",
                "url": "ftp://x/a.zip",
                "sha256": "0" * 64,
            },
            r"datasets.bad.url: 'ftp://x/a.zip' is not an http\(s\):// or file:// URL",
        ),
    ],
)
def test_dataset_spec_rejects(entry: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        DatasetSpec.from_dict("bad", entry)


# --- assign_splits --------------------------------------------------------------------------------


def test_assign_splits_deterministic_and_sized() -> None:
    pairs = [f"p{i:02d}" for i in range(20)]
    first = assign_splits(pairs, 0.25, seed=5)
    assert first == assign_splits(
        list(reversed(pairs)), 0.25, seed=5
    )  # input order does not matter
    assert sum(v == "test" for v in first.values()) == 5
    assert set(first) == set(pairs)
    assert first != assign_splits(pairs, 0.25, seed=6)


@pytest.mark.parametrize(
    ("n", "fraction", "n_test"),
    [
        (2, 0.01, 1),
        (2, 0.99, 1),
        (3, 0.25, 1),
        (10, 0.25, 3),
        (8, 0.25, 2),
        (5, 0.0, 0),
        (5, 1.0, 5),
        (1, 0.25, 0),
        (0, 0.25, 0),
    ],
)
def test_assign_splits_counts(n: int, fraction: float, n_test: int) -> None:
    splits = assign_splits([str(i) for i in range(n)], fraction, seed=0)
    assert sum(v == "test" for v in splits.values()) == n_test


# --- dir source -----------------------------------------------------------------------------------


def test_build_dir_mixed_formats(
    tmp_path: Path, good_folder: tuple[Path, dict[str, np.ndarray]]
) -> None:
    root, expected = good_folder
    out, images, manifest = _outputs(tmp_path)

    frame = build_dataset(_dir_spec(root), images, manifest, SplitSpec(0.4, seed=1), progress=False)

    stored = read_table(manifest, MANIFEST_SCHEMA)
    pd.testing.assert_frame_equal(stored, frame, check_dtype=False)
    assert list(stored.columns) == MANIFEST_SCHEMA.names
    assert stored["pair"].tolist() == ["1", "2", "3", "4", "10"]
    assert stored["channels_a"].tolist() == [1, 1, 1, 1, 1]  # "4" was gray stored as RGB
    assert stored["channels_b"].tolist() == [3, 3, 1, 3, 3]
    assert (
        stored["height"].dtype == np.int64
        and set(stored["height"]) == {H}
        and set(stored["width"]) == {W}
    )
    assert stored["path_a"].tolist()[0] == "images/ir/1.png"
    assert stored["path_b"].tolist()[-1] == "images/vi/10.png"
    assert stored["path_gt"].isna().all()
    assert (
        (stored["task"] == "ivf").all()
        and (stored["modality_a"] == "ir").all()
        and (stored["modality_b"] == "vi").all()
    )
    assert sorted(stored["split"]) == ["test", "test", "train", "train", "train"]
    for key, array in expected.items():
        np.testing.assert_array_equal(read_image(images / f"{key}.png"), array, err_msg=key)
    for path in stored["path_a"].tolist() + stored["path_b"].tolist():
        assert (out / path).is_file()
        with Image.open(out / path) as image:
            assert image.format == "PNG" and image.mode in ("L", "RGB")
    assert sorted(p.name for p in out.iterdir()) == ["images", "manifest.parquet"]  # no temporaries

    # rebuilding gives the same split and the same files
    digest = _tree_digest(images)
    again = build_dataset(_dir_spec(root), images, manifest, SplitSpec(0.4, seed=1), progress=False)
    pd.testing.assert_frame_equal(again, frame)
    assert _tree_digest(images) == digest


def test_build_dir_with_ground_truth_and_source_root(tmp_path: Path) -> None:
    root = tmp_path / "src"
    for pair in ("a", "b", "c"):
        for folder in ("ir", "vi", "gt"):
            _save(root / folder / f"{pair}.png", _gray())
    out, images, manifest = _outputs(tmp_path)
    spec = _dir_spec(tmp_path / "elsewhere", ground_truth="gt")

    frame = build_dataset(spec, images, manifest, SplitSpec(), source_root=root, progress=False)

    assert frame["path_gt"].tolist() == ["images/gt/a.png", "images/gt/b.png", "images/gt/c.png"]
    np.testing.assert_array_equal(
        read_image(images / "gt" / "b.png"), read_image(root / "gt" / "b.png")
    )


def test_build_unreadable_image(
    tmp_path: Path, good_folder: tuple[Path, dict[str, np.ndarray]]
) -> None:
    root, _ = good_folder
    bad = root / "vi" / "3.png"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes())
    out, images, manifest = _outputs(tmp_path)
    with pytest.raises(InputError) as err:
        build_dataset(_dir_spec(root), images, manifest, SplitSpec(), progress=False)
    assert f"{bad}: not a readable image" in str(err.value)
    _assert_nothing_written(out)


def test_build_truncated_png(
    tmp_path: Path, good_folder: tuple[Path, dict[str, np.ndarray]]
) -> None:
    root, _ = good_folder
    bad = root / "ir" / "10.png"
    (root / "ir" / "10.bmp").unlink()
    data = _save(tmp_path / "whole.png", _rgb(64, 64)).read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    out, images, manifest = _outputs(tmp_path)
    with pytest.raises(InputError) as err:
        build_dataset(_dir_spec(root), images, manifest, SplitSpec(), progress=False)
    assert f"{bad}: unreadable or truncated image" in str(err.value)
    _assert_nothing_written(out)


def test_build_size_mismatch(
    tmp_path: Path, good_folder: tuple[Path, dict[str, np.ndarray]]
) -> None:
    root, _ = good_folder
    _save(root / "vi" / "3.png", _gray(H, W - 4))
    out, images, manifest = _outputs(tmp_path)
    with pytest.raises(InputError) as err:
        build_dataset(_dir_spec(root), images, manifest, SplitSpec(), progress=False)
    message = str(err.value)
    assert "pair '3': images differ in size" in message
    assert f"{root / 'ir' / '3.jpeg'} is {W}x{H}" in message
    assert f"{root / 'vi' / '3.png'} is {W - 4}x{H}" in message
    _assert_nothing_written(out)


def test_build_ground_truth_size_mismatch(tmp_path: Path) -> None:
    root = tmp_path / "src"
    _save(root / "ir" / "a.png", _gray())
    _save(root / "vi" / "a.png", _gray())
    _save(root / "gt" / "a.png", _gray(H + 1, W))
    out, images, manifest = _outputs(tmp_path)
    with pytest.raises(InputError) as err:
        build_dataset(
            _dir_spec(root, ground_truth="gt"), images, manifest, SplitSpec(), progress=False
        )
    assert f"{root / 'gt' / 'a.png'} is {W}x{H + 1}" in str(err.value)
    _assert_nothing_written(out)


def test_build_missing_counterpart(
    tmp_path: Path, good_folder: tuple[Path, dict[str, np.ndarray]]
) -> None:
    root, _ = good_folder
    _save(root / "ir" / "11.png", _gray())
    out, images, manifest = _outputs(tmp_path)
    with pytest.raises(InputError) as err:
        build_dataset(_dir_spec(root), images, manifest, SplitSpec(), progress=False)
    assert f"{root / 'ir' / '11.png'}: no counterpart named '11.<ext>' in {root / 'vi'}" in str(
        err.value
    )
    _assert_nothing_written(out)


def test_build_empty_folder(tmp_path: Path) -> None:
    root = tmp_path / "src"
    _save(root / "ir" / "1.png", _gray())
    (root / "vi").mkdir()
    out, images, manifest = _outputs(tmp_path)
    with pytest.raises(InputError) as err:
        build_dataset(_dir_spec(root), images, manifest, SplitSpec(), progress=False)
    assert f"{root / 'vi'}: no images" in str(err.value)
    _assert_nothing_written(out)


def test_build_missing_folder(tmp_path: Path) -> None:
    out, images, manifest = _outputs(tmp_path)
    with pytest.raises(InputError, match=r"src: dataset folder does not exist"):
        build_dataset(_dir_spec(tmp_path / "src"), images, manifest, SplitSpec(), progress=False)
    _assert_nothing_written(out)


def test_build_failure_keeps_previous_complete_output(
    tmp_path: Path, good_folder: tuple[Path, dict[str, np.ndarray]]
) -> None:
    root, _ = good_folder
    out, images, manifest = _outputs(tmp_path)
    build_dataset(_dir_spec(root), images, manifest, SplitSpec(), progress=False)
    before = _tree_digest(out)
    (root / "vi" / "3.png").write_bytes(b"not a png")
    with pytest.raises(InputError):
        build_dataset(_dir_spec(root), images, manifest, SplitSpec(), progress=False)
    assert _tree_digest(out) == before  # untouched, and no temporaries beside it


def test_unknown_task() -> None:
    with pytest.raises(InputError) as err:
        DatasetSpec.from_dict(
            "mine", {"task": "xyz", "modalities": ["ir", "vi"], "source": "dir", "path": "/x"}
        )
    assert "datasets.mine.task: unknown task 'xyz'" in str(err.value)
    assert "ivf, mif, mef, mff" in str(err.value)


def test_url_source_needs_extracted_root(tmp_path: Path) -> None:
    spec = DatasetSpec.from_dict(
        "u",
        {
            "task": "ivf",
            "modalities": ["ir", "vi"],
            "source": "url",
            "url": "http://x/a.zip",
            "sha256": "a" * 64,
        },
    )
    out, images, manifest = _outputs(tmp_path)
    with pytest.raises(InputError, match="needs source_root"):
        build_dataset(spec, images, manifest, SplitSpec(), progress=False)
    _assert_nothing_written(out)


# --- synthetic source -----------------------------------------------------------------------------


def _stub_synthetic(monkeypatch: pytest.MonkeyPatch, calls: list[tuple[object, ...]]) -> None:
    """Stand-in generator with the synthetic module's API: tests build's plumbing on its own."""

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class SyntheticPair:
        pair: str
        a: np.ndarray
        b: np.ndarray
        gt: np.ndarray | None

    def generate_pairs(
        task: str, modalities: tuple[str, str], pairs: int, height: int, width: int, seed: int
    ) -> Iterator[SyntheticPair]:
        calls.append((task, tuple(modalities), pairs, height, width, seed))
        rng = np.random.default_rng(seed)
        for i in range(pairs):
            a = rng.integers(0, 256, (height, width), dtype=np.uint8)
            b = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            yield SyntheticPair(f"{i:04d}", a, b, (a // 2) if task == "mff" else None)

    module = types.ModuleType("fusionfm.data.synthetic")
    module.SyntheticPair = SyntheticPair  # type: ignore[attr-defined]
    module.generate_pairs = generate_pairs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fusionfm.data.synthetic", module)


def _synthetic_spec(task: str, modalities: list[str], seed: int = 3, pairs: int = 4) -> DatasetSpec:
    return DatasetSpec.from_dict(
        f"syn_{task}",
        {
            "task": task,
            "modalities": modalities,
            "source": "synthetic",
            "synthetic": {"pairs": pairs, "height": 32, "width": 40, "seed": seed},
        },
    )


def test_build_synthetic_plumbing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    _stub_synthetic(monkeypatch, calls)
    spec = _synthetic_spec("mff", ["near", "far"], seed=9, pairs=5)
    out, images, manifest = _outputs(tmp_path)

    frame = build_dataset(spec, images, manifest, SplitSpec(0.25, 0), progress=False)

    assert calls == [("mff", ("near", "far"), 5, 32, 40, 9)]
    assert frame["pair"].tolist() == ["0000", "0001", "0002", "0003", "0004"]
    assert frame["path_gt"].tolist()[0] == "images/gt/0000.png"
    assert frame["channels_a"].tolist() == [1] * 5 and frame["channels_b"].tolist() == [3] * 5
    assert (frame["height"] == 32).all() and (frame["width"] == 40).all()
    assert sorted(p.name for p in images.iterdir()) == ["far", "gt", "near"]
    assert (frame["split"] == "test").sum() == 1


def test_build_synthetic_bad_generator_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[object, ...]] = []
    _stub_synthetic(monkeypatch, calls)
    original = sys.modules["fusionfm.data.synthetic"].generate_pairs

    def mismatched(*args: object) -> Iterator[object]:
        for item in original(*args):
            yield type(item)(item.pair, item.a, item.b[:-1], item.gt)

    monkeypatch.setattr(sys.modules["fusionfm.data.synthetic"], "generate_pairs", mismatched)
    out, images, manifest = _outputs(tmp_path)
    with pytest.raises(
        InputError,
        match=r"pair '0000': images differ in size: synthetic ivf pair '0000' \(ir\) is 40x32",
    ):
        build_dataset(
            _synthetic_spec("ivf", ["ir", "vi"]), images, manifest, SplitSpec(), progress=False
        )
    _assert_nothing_written(out)


@pytest.mark.parametrize(
    ("task", "modalities"),
    [
        ("ivf", ["ir", "vi"]),
        ("mif", ["mri", "pet"]),
        ("mef", ["under", "over"]),
        ("mff", ["near", "far"]),
    ],
)
def test_build_synthetic_same_seed_is_byte_identical(
    tmp_path: Path, task: str, modalities: list[str]
) -> None:
    """Acceptance: the same seed gives byte-identical images (real generators, built twice)."""
    spec = _synthetic_spec(task, modalities, seed=21, pairs=3)
    frames, digests = [], []
    for attempt in ("one", "two"):
        images, manifest = tmp_path / attempt / "images", tmp_path / attempt / "manifest.parquet"
        frames.append(build_dataset(spec, images, manifest, SplitSpec(0.25, 0), progress=False))
        digests.append(_tree_digest(images))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert digests[0] == digests[1]
    assert len(digests[0]) >= 6
    build_dataset(
        _synthetic_spec(task, modalities, seed=22, pairs=3),
        tmp_path / "x" / "images",
        tmp_path / "x" / "m.parquet",
        SplitSpec(),
        progress=False,
    )
    assert _tree_digest(tmp_path / "x" / "images") != digests[0]  # and another seed differs
