"""In-memory task data: which pairs are loaded, luminance, reproducible crops, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fusionfm.config import DatasetSpec, SplitSpec
from fusionfm.data.build import build_dataset
from fusionfm.io import MANIFEST_SCHEMA, InputError, read_image, read_table
from fusionfm.teacher.color import luminance
from fusionfm.train.data import load_task_data, load_test_pairs

MODALITIES = {
    "ivf": ("ir", "vi"),
    "mif": ("mri", "pet"),
    "mef": ("under", "over"),
    "mff": ("near", "far"),
}


def make_task_dataset(
    root: Path,
    task: str = "ivf",
    pairs: int = 6,
    size: tuple[int, int] = (20, 28),
    reject: tuple[str, ...] = ("1",),
    seed: int = 0,
    name: str | None = None,
) -> tuple[Path, Path]:
    """A tiny built dataset (gray A, RGB B) and a labels folder holding the mean of the sources
    for every pair except ``reject``; returns ``(dataset_dir, labels_dir)``."""
    rng = np.random.default_rng(seed)
    name = name or f"tiny_{task}"
    src = root / "src" / name
    mod_a, mod_b = MODALITIES[task]
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(pairs):
        base = (127 + 100 * np.sin((xx + 3 * i) / 4.0) * np.cos(yy / 5.0)).astype(np.uint8)
        a = np.clip(base.astype(int) + rng.integers(-20, 20, (h, w)), 0, 255).astype(np.uint8)
        b = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for mod, img in ((mod_a, a), (mod_b, b)):
            (src / mod).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(src / mod / f"{i}.png")
    spec = DatasetSpec.from_dict(
        name, {"task": task, "modalities": [mod_a, mod_b], "source": "dir", "path": str(src)}
    )
    dataset_dir = root / "datasets" / name
    build_dataset(
        spec,
        dataset_dir / "images",
        dataset_dir / "manifest.parquet",
        SplitSpec(0.34, seed=0),
        progress=False,
    )
    labels = root / "refine" / name / "images"
    labels.mkdir(parents=True, exist_ok=True)
    frame = read_table(dataset_dir / "manifest.parquet", MANIFEST_SCHEMA)
    for row in frame.itertuples():
        if row.pair in reject:
            continue
        a = luminance(read_image(dataset_dir / row.path_a))
        b = luminance(read_image(dataset_dir / row.path_b))
        Image.fromarray(np.round((a + b) / 2).astype(np.uint8)).save(labels / f"{row.pair}.png")
    return dataset_dir, labels


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    return make_task_dataset(tmp_path)


def test_loads_train_pairs_with_labels_only(tiny: tuple[Path, Path]) -> None:
    dataset_dir, labels = tiny
    frame = read_table(dataset_dir / "manifest.parquet", MANIFEST_SCHEMA)
    expected = [
        p for p, s in zip(frame["pair"], frame["split"], strict=True) if s == "train" and p != "1"
    ]
    data = load_task_data([tiny], "ivf", crop=16)
    assert data.pairs == [f"{dataset_dir.name}/{p}" for p in expected]
    assert len(data) == len(expected) > 0
    row = frame.set_index("pair").loc[expected[0]]
    ref_a = luminance(read_image(dataset_dir / row.path_a)) / 255.0
    ref_b = luminance(read_image(dataset_dir / row.path_b)) / 255.0
    np.testing.assert_allclose(data.y_a[0][0].numpy(), ref_a, atol=1e-6)
    np.testing.assert_allclose(data.y_b[0][0].numpy(), ref_b, atol=1e-6)
    assert data.x_1[0].shape == (1, 20, 28) and data.x_1[0].dtype == torch.float32
    assert 0.0 <= float(data.y_b[0].min()) and float(data.y_b[0].max()) <= 1.0


def test_crops_are_reproducible_and_shaped(tiny: tuple[Path, Path]) -> None:
    data = load_task_data([tiny], "ivf", crop=16)
    one = data.sample(5, torch.Generator().manual_seed(3))
    two = data.sample(5, torch.Generator().manual_seed(3))
    other = data.sample(5, torch.Generator().manual_seed(4))
    for key in ("y_a", "y_b", "x_1"):
        assert one[key].shape == (5, 1, 16, 16) and one[key].dtype == torch.float32
        assert torch.equal(one[key], two[key])
    assert not torch.equal(one["y_a"], other["y_a"])
    # the label is the mean of the sources, crops and flips keep them aligned
    torch.testing.assert_close(one["x_1"], (one["y_a"] + one["y_b"]) / 2, atol=1 / 255, rtol=0)


def test_crop_larger_than_images_is_padded(tiny: tuple[Path, Path]) -> None:
    data = load_task_data([tiny], "ivf", crop=32)
    assert data.sample(2, torch.Generator().manual_seed(0))["y_a"].shape == (2, 1, 32, 32)


def test_two_datasets_and_test_pairs(tmp_path: Path) -> None:
    first = make_task_dataset(tmp_path, name="d1", reject=())
    second = make_task_dataset(tmp_path, name="d2", seed=1, reject=())
    data = load_task_data([first, second], "ivf", crop=8)
    assert {p.split("/")[0] for p in data.pairs} == {"d1", "d2"}
    test = load_test_pairs([first, second], "ivf")
    assert test and all(p.label is not None and p.a.dtype == np.uint8 for p in test)
    assert test[0].b.ndim == 3 and test[0].ground_truth is None


def test_errors(tmp_path: Path, tiny: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match="holds pairs of task"):
        load_task_data([tiny], "mif", crop=8)
    with pytest.raises(InputError, match="no such manifest"):
        load_task_data([(tmp_path / "nope", tmp_path)], "ivf", crop=8)
    with pytest.raises(InputError, match="no train pair with a pseudo-label"):
        load_task_data([(tiny[0], tmp_path / "empty")], "ivf", crop=8)
    with pytest.raises(InputError, match="unknown task"):
        load_task_data([tiny], "xyz", crop=8)
    first_pair = load_task_data([tiny], "ivf", crop=8).pairs[0].split("/")[1]
    label = tiny[1] / f"{first_pair}.png"
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(label)
    with pytest.raises(InputError, match=label.name):
        load_task_data([tiny], "ivf", crop=8)
