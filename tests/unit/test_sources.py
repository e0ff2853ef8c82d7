"""Finding source pairs: pair folders (scan_pair_folder) and data_root discovery (resolve_datasets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusionfm.config import config_sha256, order_modalities, resolve_datasets
from fusionfm.data.sources import scan_pair_folder
from fusionfm.io import InputError


def _png(path: Path, value: int = 0, size: tuple[int, int] = (8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, dtype=np.uint8)).save(path)
    return path


def _pair_folder(
    root: Path, names_a: list[str], names_b: list[str], a: str = "ir", b: str = "vi"
) -> Path:
    for name in names_a:
        _png(root / a / name)
    for name in names_b:
        _png(root / b / name)
    return root


# --- scan_pair_folder -----------------------------------------------------------------------------


def test_scan_matches_by_stem_across_extensions_and_sorts_naturally(tmp_path: Path) -> None:
    root = _pair_folder(
        tmp_path / "ds",
        ["10.png", "2.JPG", "1.bmp", "img3.TIFF"],
        ["1.png", "2.jpeg", "10.tif", "img3.png"],
    )
    (root / "ir" / ".hidden.png").write_bytes(b"junk")
    (root / "ir" / "notes.txt").write_text("not an image")
    (root / "vi" / "Thumbs.db").write_bytes(b"junk")
    (root / "vi" / "sub.png").mkdir()  # a folder with an image suffix is not an image

    pairs = scan_pair_folder(root, ["ir", "vi"])

    assert [p.pair for p in pairs] == ["1", "2", "10", "img3"]
    assert pairs[1].path_a == root / "ir" / "2.JPG"
    assert pairs[1].path_b == root / "vi" / "2.jpeg"
    assert all(p.path_gt is None for p in pairs)


def test_scan_with_ground_truth(tmp_path: Path) -> None:
    root = _pair_folder(tmp_path / "ds", ["a.png", "b.png"], ["a.png", "b.png"])
    _png(root / "gt" / "a.png")
    _png(root / "gt" / "b.jpg")
    _png(root / "gt" / "extra.png")  # reference images without a pair are ignored

    pairs = scan_pair_folder(root, ["ir", "vi"], ground_truth="gt")

    assert [(p.pair, p.path_gt) for p in pairs] == [
        ("a", root / "gt" / "a.png"),
        ("b", root / "gt" / "b.jpg"),
    ]


def test_scan_missing_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope: dataset folder does not exist"):
        scan_pair_folder(tmp_path / "nope", ["ir", "vi"])


def test_scan_missing_modality_folder(tmp_path: Path) -> None:
    root = _pair_folder(tmp_path / "ds", ["1.png"], [])
    with pytest.raises(InputError) as err:
        scan_pair_folder(root, ["ir", "vi"])
    assert str(root / "vi") in str(err.value)
    assert "modality folder 'vi' is missing" in str(err.value)
    assert "ir" in str(err.value)  # lists what is there


def test_scan_empty_folder(tmp_path: Path) -> None:
    root = _pair_folder(tmp_path / "ds", ["1.png"], [])
    (root / "vi").mkdir()
    (root / "vi" / "readme.txt").write_text("no images here")
    with pytest.raises(InputError) as err:
        scan_pair_folder(root, ["ir", "vi"])
    assert f"{root / 'vi'}: no images" in str(err.value)


def test_scan_missing_counterpart_names_file_and_folder(tmp_path: Path) -> None:
    root = _pair_folder(tmp_path / "ds", ["1.png", "2.png", "3.png"], ["1.png", "3.png"])
    with pytest.raises(InputError) as err:
        scan_pair_folder(root, ["ir", "vi"])
    message = str(err.value)
    assert str(root / "ir" / "2.png") in message
    assert f"no counterpart named '2.<ext>' in {root / 'vi'}" in message


def test_scan_missing_counterpart_in_a(tmp_path: Path) -> None:
    root = _pair_folder(tmp_path / "ds", ["1.png"], ["1.png", "7.jpg", "8.jpg"])
    with pytest.raises(InputError) as err:
        scan_pair_folder(root, ["ir", "vi"])
    message = str(err.value)
    assert str(root / "vi" / "7.jpg") in message and str(root / "ir") in message
    assert "and 1 more unmatched" in message


def test_scan_duplicate_stem(tmp_path: Path) -> None:
    root = _pair_folder(tmp_path / "ds", ["1.png", "1.jpg"], ["1.png"])
    with pytest.raises(InputError) as err:
        scan_pair_folder(root, ["ir", "vi"])
    message = str(err.value)
    assert str(root / "ir") in message and "two images named '1'" in message
    assert "1.jpg" in message and "1.png" in message


def test_scan_missing_ground_truth_image(tmp_path: Path) -> None:
    root = _pair_folder(tmp_path / "ds", ["a.png", "b.png"], ["a.png", "b.png"])
    _png(root / "gt" / "a.png")
    with pytest.raises(InputError) as err:
        scan_pair_folder(root, ["ir", "vi"], ground_truth="gt")
    assert f"no ground-truth image named 'b.<ext>' in {root / 'gt'}" in str(err.value)


def test_scan_missing_ground_truth_folder(tmp_path: Path) -> None:
    root = _pair_folder(tmp_path / "ds", ["a.png"], ["a.png"])
    with pytest.raises(InputError, match="ground-truth folder 'gt' is missing"):
        scan_pair_folder(root, ["ir", "vi"], ground_truth="gt")


# --- resolve_datasets -----------------------------------------------------------------------------


def _data_root(tmp_path: Path) -> Path:
    """A small <task>/<dataset>/<modality>/<pair>.png tree like /work/shared/data."""
    root = tmp_path / "data"
    layout = {
        "ivf/TNO": ["vi", "ir"],
        "ivf/Road Scene": ["visible", "ir"],
        "mif/MRI_PET": ["pet", "mri"],
        "mef/MEFB": ["over", "under", "gt"],
        "mff/Lytro": ["far", "near"],
        "mff/odd": ["zeta", "alpha"],
    }
    for dataset, folders in layout.items():
        for folder in folders:
            _png(root / dataset / folder / "01.png")
    _png(root / "priors" / "ivf" / "TNO" / "x.png")  # not a task folder: ignored
    (root / "ivf" / ".cache").mkdir()  # hidden: ignored
    (root / "README.md").write_text("hello")
    return root


def test_resolve_without_data_root_returns_datasets_section() -> None:
    config = {
        "data_root": None,
        "datasets": {"syn": {"task": "ivf", "modalities": ["ir", "vi"], "source": "synthetic"}},
    }
    assert resolve_datasets(config) == config["datasets"]


def test_resolve_discovers_datasets_with_task_order(tmp_path: Path) -> None:
    root = _data_root(tmp_path)
    datasets = resolve_datasets(
        {"data_root": str(root), "data_root_include": ["*/*"], "datasets": {"x": {}}}
    )

    assert sorted(datasets) == [
        "ivf_Road_Scene",
        "ivf_TNO",
        "mef_MEFB",
        "mff_Lytro",
        "mff_odd",
        "mif_MRI_PET",
    ]
    assert datasets["ivf_TNO"] == {
        "task": "ivf",
        "modalities": ["ir", "vi"],
        "source": "dir",
        "path": str(root / "ivf" / "TNO"),
        "ground_truth": None,
    }
    assert datasets["ivf_Road_Scene"]["modalities"] == ["ir", "visible"]
    assert datasets["ivf_Road_Scene"]["path"] == str(root / "ivf" / "Road Scene")
    assert datasets["mif_MRI_PET"]["modalities"] == ["mri", "pet"]
    assert datasets["mef_MEFB"]["modalities"] == ["under", "over"]
    assert datasets["mef_MEFB"]["ground_truth"] == "gt"
    assert datasets["mff_Lytro"]["modalities"] == ["near", "far"]
    assert datasets["mff_odd"]["modalities"] == ["alpha", "zeta"]  # unknown names: alphabetical


def test_resolve_include_globs(tmp_path: Path) -> None:
    root = _data_root(tmp_path)
    datasets = resolve_datasets({"data_root": str(root), "data_root_include": ["ivf/T*", "mff/*"]})
    assert sorted(datasets) == ["ivf_TNO", "mff_Lytro", "mff_odd"]


def test_resolve_include_pattern_matching_nothing(tmp_path: Path) -> None:
    root = _data_root(tmp_path)
    with pytest.raises(
        InputError, match=r"pattern 'ivf/MSRS' matches no dataset .*found: ivf/Road Scene"
    ):
        resolve_datasets({"data_root": str(root), "data_root_include": ["ivf/TNO", "ivf/MSRS"]})


def test_resolve_missing_data_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"data_root '.*missing': no such folder"):
        resolve_datasets({"data_root": str(tmp_path / "missing")})


def test_resolve_no_datasets(tmp_path: Path) -> None:
    (tmp_path / "empty" / "other").mkdir(parents=True)
    with pytest.raises(InputError, match=r"empty'?: no datasets found"):
        resolve_datasets({"data_root": str(tmp_path / "empty")})


@pytest.mark.parametrize("folders", [["ir"], ["ir", "vi", "nir"], ["gt", "ir"]])
def test_resolve_needs_exactly_two_modalities(tmp_path: Path, folders: list[str]) -> None:
    for folder in folders:
        _png(tmp_path / "data" / "ivf" / "X" / folder / "1.png")
    with pytest.raises(InputError) as err:
        resolve_datasets({"data_root": str(tmp_path / "data")})
    assert str(tmp_path / "data" / "ivf" / "X") in str(err.value)
    assert "expected exactly two modality folders" in str(err.value)


def test_resolve_name_collision(tmp_path: Path) -> None:
    for dataset in ("a b", "a_b"):
        for folder in ("ir", "vi"):
            _png(tmp_path / "data" / "ivf" / dataset / folder / "1.png")
    with pytest.raises(InputError, match="dataset name 'ivf_a_b' is also used"):
        resolve_datasets({"data_root": str(tmp_path / "data")})


def test_order_modalities() -> None:
    assert order_modalities("ivf", ["VIS", "IR"]) == ["IR", "VIS"]
    assert order_modalities("mif", ["spect", "mri"]) == ["mri", "spect"]
    assert order_modalities("mif", ["ct", "other"]) == ["other", "ct"]
    assert order_modalities("mef", ["over", "under"]) == ["under", "over"]


def test_config_sha256_is_canonical() -> None:
    a = {"split": {"seed": 0, "test_fraction": 0.25}, "datasets": {}}
    b = {"datasets": {}, "split": {"test_fraction": 0.25, "seed": 0}}
    assert config_sha256(a) == config_sha256(b)
    assert len(config_sha256(a)) == 64
    assert config_sha256(a) != config_sha256({**a, "data_root": "x"})


def test_resolve_shared_data(shared_data: Path) -> None:
    """The shared real-data folder (skipped without it, see conftest) gives its 8 datasets."""
    datasets = resolve_datasets({"data_root": str(shared_data), "data_root_include": ["*/*"]})
    expected = {
        "ivf_RoadScene": ["ir", "vi"],
        "ivf_TNO": ["ir", "vi"],
        "ivf_VIFB": ["ir", "vi"],
        "mif_MRI_CT": ["mri", "ct"],
        "mif_MRI_PET": ["mri", "pet"],
        "mif_MRI_SPECT": ["mri", "spect"],
        "mef_MEFB": ["under", "over"],
        "mff_Lytro": ["near", "far"],
        "mff_MFIFB": ["near", "far"],
    }
    assert {name: d["modalities"] for name, d in datasets.items()} == expected
    assert all(d["source"] == "dir" and Path(d["path"]).is_dir() for d in datasets.values())
    # the folders really pair up
    assert (
        len(scan_pair_folder(datasets["ivf_TNO"]["path"], datasets["ivf_TNO"]["modalities"])) == 15
    )
