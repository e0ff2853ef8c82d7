"""Fusing with the student: any size and color, files, folders, and the argparse command."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fusionfm.cli import build_parser
from fusionfm.fuse import fuse_files, fuse_folders, fuse_images, fuse_luminance
from fusionfm.io import InputError, read_image
from fusionfm.models import TASK_INDEX, FusionUNet, UNetConfig
from fusionfm.train.checkpoint import model_payload, save_checkpoint

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def model() -> FusionUNet:
    torch.manual_seed(0)
    return FusionUNet(UNetConfig(base_channels=8, depth=2, time_dim=8, max_groups=4)).eval()


@pytest.fixture
def model_file(tmp_path: Path, model: FusionUNet) -> Path:
    path = tmp_path / "model.pt"
    save_checkpoint(path, model_payload(model, "ivf", ["ivf"], 1, {}))
    return path


def _img(h: int, w: int, rgb: bool) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3) if rgb else (h, w), dtype=np.uint8)


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.mark.parametrize(
    ("size", "rgb_a", "rgb_b", "task"),
    [
        ((17, 23), False, False, "ivf"),
        ((9, 31), False, True, "mif"),
        ((3, 5), True, True, "mef"),
        ((33, 20), True, False, "mff"),
    ],
)
def test_fuse_images_shape_and_dtype(
    model: FusionUNet, size: tuple[int, int], rgb_a: bool, rgb_b: bool, task: str
) -> None:
    a, b = _img(*size, rgb_a), _img(*size, rgb_b)
    out = fuse_images(model, a, b, task, steps=2)
    expected = size if not (rgb_a or rgb_b) else (*size, 3)
    assert out.shape == expected and out.dtype == np.uint8
    heun = fuse_images(model, a, b, task, steps=1, method="heun", start="max")
    assert heun.shape == expected


def test_fuse_images_is_deterministic_and_leaves_mode(model: FusionUNet) -> None:
    a, b = _img(16, 16, False), _img(16, 16, False)
    model.train()
    try:
        assert np.array_equal(fuse_images(model, a, b, "ivf"), fuse_images(model, a, b, "ivf"))
        assert model.training
    finally:
        model.eval()


def test_fuse_images_errors(model: FusionUNet) -> None:
    a = _img(8, 8, False)
    with pytest.raises(InputError, match="unknown task"):
        fuse_images(model, a, a, "xyz")
    with pytest.raises(InputError, match="steps"):
        fuse_images(model, a, a, "ivf", steps=9)
    with pytest.raises(InputError, match="method"):
        fuse_images(model, a, a, "ivf", method="rk4")
    with pytest.raises(InputError, match="differ in size"):
        fuse_images(model, a, _img(8, 9, False), "ivf")
    with pytest.raises(InputError, match="uint8"):
        fuse_images(model, a.astype(np.float32), a, "ivf")


def test_fuse_files_and_errors(tmp_path: Path, model_file: Path) -> None:
    a = _save(tmp_path / "a.png", _img(13, 19, False))
    b = _save(tmp_path / "b.png", _img(13, 19, True))
    out = fuse_files(model_file, a, b, tmp_path / "out" / "f.png", "ivf", steps=2)
    assert read_image(tmp_path / "out" / "f.png").shape == out.shape == (13, 19, 3)
    small = _save(tmp_path / "small.png", _img(12, 19, False))
    with pytest.raises(InputError, match=r"small\.png: size 19x12 differs from .*a\.png \(19x13\)"):
        fuse_files(model_file, a, small, tmp_path / "x.png", "ivf")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"broken\.png"):
        fuse_files(model_file, a, broken, tmp_path / "x.png", "ivf")
    with pytest.raises(InputError, match="output image extension"):
        fuse_files(model_file, a, b, tmp_path / "x.txt", "ivf")


def _parser() -> argparse.ArgumentParser:
    return build_parser()


def test_cli_file_mode(tmp_path: Path, model_file: Path) -> None:
    a = _save(tmp_path / "a.png", _img(10, 11, True))
    b = _save(tmp_path / "b.png", _img(10, 11, False))
    out = tmp_path / "fused.png"
    args = _parser().parse_args(
        [
            "fuse",
            "--model",
            str(model_file),
            "--task",
            "ivf",
            str(a),
            str(b),
            "-o",
            str(out),
            "--steps",
            "2",
            "--method",
            "heun",
        ]
    )
    assert args.handler(args) == 0
    assert read_image(out).shape == (10, 11, 3)


def test_cli_folder_mode(tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture) -> None:
    for stem in ("1", "2", "10"):
        _save(tmp_path / "A" / f"{stem}.png", _img(9, 14, False))
        _save(tmp_path / "B" / f"{stem}.jpg", _img(9, 14, True))
    _save(tmp_path / "A" / "lonely.png", _img(9, 14, False))
    out = tmp_path / "fused"
    args = _parser().parse_args(
        [
            "fuse",
            "--model",
            str(model_file),
            "--task",
            "ivf",
            str(tmp_path / "A"),
            str(tmp_path / "B"),
            "-o",
            str(out),
            "--steps",
            "1",
        ]
    )
    assert args.handler(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["1.png", "10.png", "2.png"]
    assert read_image(out / "10.png").shape == (9, 14, 3)
    assert "fused 3 pairs" in capsys.readouterr().err
    written = fuse_folders(
        model_file, tmp_path / "A", tmp_path / "B", out, "ivf", steps=1, progress=False
    )
    assert [p.name for p in written] == ["1.png", "2.png", "10.png"]


def test_cli_errors(tmp_path: Path, model_file: Path) -> None:
    a = _save(tmp_path / "a.png", _img(8, 8, False))
    (tmp_path / "empty").mkdir()
    parser = _parser()
    args = parser.parse_args(
        [
            "fuse",
            "--model",
            str(model_file),
            "--task",
            "ivf",
            str(a),
            str(tmp_path / "empty"),
            "-o",
            str(tmp_path / "o.png"),
        ]
    )
    with pytest.raises(InputError, match="is a folder but"):
        args.handler(args)
    (tmp_path / "other").mkdir()
    _save(tmp_path / "other" / "x.png", _img(8, 8, False))
    args = parser.parse_args(
        [
            "fuse",
            "--model",
            str(model_file),
            "--task",
            "ivf",
            str(tmp_path / "other"),
            str(tmp_path / "empty"),
            "-o",
            str(tmp_path / "out"),
        ]
    )
    with pytest.raises(InputError, match="no image file stems in common"):
        args.handler(args)
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"\x80\x04junk")
    args = parser.parse_args(
        [
            "fuse",
            "--model",
            str(bogus),
            "--task",
            "ivf",
            str(a),
            str(a),
            "-o",
            str(tmp_path / "o.png"),
        ]
    )
    with pytest.raises(InputError, match=r"bogus\.pt: not a fusionfm checkpoint"):
        args.handler(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["fuse", "--model", "m", "--task", "nope", "a", "b", "-o", "o"])


@pytest.mark.parametrize("steps", [1, 3])
def test_fuse_luminance_is_the_hand_computed_euler_solve(steps: int) -> None:
    """x_0 = mean of the sources on [0, 1]; x_{k+1} = x_k + v(x_k, k/n) / n; output clamp * 255."""
    torch.manual_seed(3)
    net = FusionUNet(UNetConfig(base_channels=8, depth=2, time_dim=8, max_groups=4)).eval()
    with torch.no_grad():  # weights with a clearly non-zero velocity
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    y_a = RNG.integers(0, 256, (12, 20)).astype(np.float64)
    y_b = RNG.integers(0, 256, (12, 20)).astype(np.float64)
    ya = torch.tensor(y_a / 255.0, dtype=torch.float32)[None, None]
    yb = torch.tensor(y_b / 255.0, dtype=torch.float32)[None, None]
    task = torch.tensor([TASK_INDEX["mif"]])
    x = 0.5 * (ya + yb)
    with torch.no_grad():
        for k in range(steps):
            x = x + net(x, torch.tensor([k / steps]), ya, yb, task) / steps
    expected = (x[0, 0].clamp(0, 1).double() * 255).numpy()
    fused = fuse_luminance(net, y_a, y_b, "mif", steps=steps)
    np.testing.assert_allclose(fused, expected, rtol=0, atol=2e-3)  # float32 time grid
    assert np.abs(fused - (y_a + y_b) / 2).mean() > 5  # the solve moved away from the start


def test_cli_threads_sets_torch_threads(tmp_path: Path, model_file: Path) -> None:
    a = _save(tmp_path / "a.png", _img(8, 8, False))
    b = _save(tmp_path / "b.png", _img(8, 8, False))
    before = torch.get_num_threads()
    base = ["fuse", "--model", str(model_file), "--task", "ivf", str(a), str(b)]
    try:
        args = _parser().parse_args([*base, "-o", str(tmp_path / "f.png"), "--threads", "1"])
        assert args.handler(args) == 0 and torch.get_num_threads() == 1
        args = _parser().parse_args([*base, "-o", str(tmp_path / "g.png"), "-j", "0"])
        with pytest.raises(InputError, match="--threads"):
            args.handler(args)
    finally:
        torch.set_num_threads(before)
