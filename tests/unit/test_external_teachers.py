"""External teachers: precomputed folders, commands, TorchScript models, and prior discovery."""

from __future__ import annotations

import os
import pickle
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fusionfm.color import rgb_to_ycbcr
from fusionfm.config import resolve_datasets
from fusionfm.io import InputError, read_image
from fusionfm.teacher.color import fuse_color, luminance
from fusionfm.teacher.external import (
    SkippedPair,
    apply_color_rule,
    build_external_teacher,
    discover_priors,
    sanitize_teacher_name,
)

H, W = 24, 32

# torch >= 2.10 deprecates TorchScript in favor of torch.export; the contract here is TorchScript.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _gray(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    return _rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def _rgb(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    return _rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, array: np.ndarray, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _fuse(spec: dict, a: np.ndarray, b: np.ndarray, task: str, pair: str) -> np.ndarray:
    return build_external_teacher("ext", spec).fuse(a, b, task, pair=pair)


# ---------------------------------------------------------------------------------- precomputed


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """A method folder: a gray PNG result (p1), an RGB JPEG result (p2), a mis-sized one (p3)."""
    folder = tmp_path / "priors" / "MethodX"
    _save(folder / "p1.png", _gray(1))
    _save(folder / "p2.jpg", _rgb(2), quality=90)
    _save(folder / "p3.png", _gray(3, h=30, w=40))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_precomputed_reads_gray_and_rgb_results(results: Path) -> None:
    spec = {"kind": "precomputed", "path": str(results)}
    teacher = build_external_teacher("MethodX", spec)
    assert teacher.name == "MethodX" and not teacher.builtin
    assert teacher.tasks == frozenset({"ivf", "mif", "mef", "mff"})
    gray_pair = (_gray(10), _gray(11))
    fused = teacher.fuse(*gray_pair, "mif", pair="p1")
    np.testing.assert_array_equal(fused, _gray(1))
    color_pair = (_gray(12), _rgb(13))
    fused = teacher.fuse(*color_pair, "ivf", pair="p2")
    assert fused.dtype == np.uint8 and fused.shape == (H, W, 3)
    np.testing.assert_array_equal(fused, read_image(results / "p2.jpg"))  # RGB kept as is


def test_precomputed_missing_result_errors_or_skips(results: Path) -> None:
    a, b = _gray(10), _gray(11)
    with pytest.raises(InputError, match=r"MethodX.*no result for pair 'p9'"):
        _fuse({"kind": "precomputed", "path": str(results)}, a, b, "ivf", "p9")
    skip = {"kind": "precomputed", "path": str(results), "on_missing": "skip"}
    with pytest.raises(SkippedPair, match="p9"):
        _fuse(skip, a, b, "ivf", "p9")


def test_precomputed_mis_sized_result_names_file_and_sizes(results: Path) -> None:
    a, b = _gray(10), _gray(11)
    with pytest.raises(InputError, match=r"p3\.png: result is 40x30 .* 32x24"):
        _fuse({"kind": "precomputed", "path": str(results)}, a, b, "ivf", "p3")
    skip = {"kind": "precomputed", "path": str(results), "on_missing": "skip"}
    with pytest.raises(SkippedPair, match="40x30"):
        _fuse(skip, a, b, "ivf", "p3")


@pytest.mark.parametrize("task", ["ivf", "mef"])
def test_precomputed_gray_result_on_color_pair_gets_the_chroma(results: Path, task: str) -> None:
    a, b = _gray(20), _rgb(21)
    fused = _fuse({"kind": "precomputed", "path": str(results)}, a, b, task, "p1")
    assert fused.shape == (H, W, 3)
    y = _gray(1).astype(np.float64)
    np.testing.assert_array_equal(fused, fuse_color(a, b, task, lambda y_a, y_b: y))
    assert np.abs(luminance(fused) - y).max() <= 2.0  # the result is the fused luminance
    if task == "ivf":  # chroma of the color source, wherever no channel was clipped
        inside = ((fused > 0) & (fused < 255)).all(axis=-1)
        chroma_fused, chroma_b = rgb_to_ycbcr(fused)[..., 1:], rgb_to_ycbcr(b)[..., 1:]
        assert inside.mean() > 0.3
        assert np.abs(chroma_fused - chroma_b)[inside].max() <= 1.5


def test_gray_valued_rgb_result_counts_as_gray() -> None:
    y = _gray(5)
    rgb_gray = np.repeat(y[..., None], 3, axis=2)
    np.testing.assert_array_equal(apply_color_rule(rgb_gray, _gray(1), _gray(2), "ivf"), y)
    a, b = _gray(1), _rgb(2)
    np.testing.assert_array_equal(
        apply_color_rule(rgb_gray, a, b, "ivf"), apply_color_rule(y, a, b, "ivf")
    )


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ({"kind": "magic"}, r"kind: expected one of precomputed, command, torchscript"),
        ({"kind": "precomputed"}, r"path: expected a path"),
        ({"kind": "precomputed", "path": "/no/such/folder"}, r"no such folder"),
        ({"kind": "precomputed", "path": ".", "argv": ["x"]}, r"unknown key\(s\) 'argv'"),
        ({"kind": "precomputed", "path": ".", "tasks": ["ivf", "xyz"]}, r"unknown: xyz"),
        ({"kind": "precomputed", "path": ".", "on_missing": "ignore"}, r"on_missing"),
        ({"kind": "command", "argv": "python fuse.py"}, r"argv: expected a non-empty list"),
        ({"kind": "command", "argv": ["x", "{a}", "{b}"]}, r"no argument contains \{out\}"),
        ({"kind": "command", "argv": ["x", "{src}", "{out}"]}, r"unknown placeholder.*\{src\}"),
        (
            {"kind": "command", "argv": ["x", "{out}"], "timeout": 0},
            r"timeout: expected a positive",
        ),
    ],
)
def test_bad_external_specs_are_refused(spec: dict, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        build_external_teacher("bad", spec)


# ---------------------------------------------------------------------------------- command


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _command(script: Path, **extra: object) -> dict:
    return {
        "kind": "command",
        "argv": [sys.executable, str(script), "{a}", "{b}", "{out}"],
        **extra,
    }


def test_command_teacher_averages(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "average.py",
        """
        import sys
        import numpy as np
        from PIL import Image
        a, b = (np.asarray(Image.open(p), dtype=np.float64) for p in sys.argv[1:3])
        out = sys.argv[3]
        Image.fromarray(np.round((a + b) / 2).astype(np.uint8)).save(out)
        """,
    )
    a, b = _gray(1), _gray(2)
    fused = _fuse(_command(script), a, b, "mff", "p1")
    expected = np.round((a.astype(np.float64) + b) / 2).astype(np.uint8)
    np.testing.assert_array_equal(fused, expected)


def test_command_teacher_fills_task_and_pair(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "echo.py",
        """
        import shutil, sys
        assert sys.argv[4:] == ["mef", "scene_7"], sys.argv
        shutil.copy(sys.argv[1], sys.argv[3])
        """,
    )
    spec = {
        "kind": "command",
        "argv": [sys.executable, str(script), "{a}", "{b}", "{out}", "{task}", "{pair}"],
    }
    a = _gray(1)
    np.testing.assert_array_equal(_fuse(spec, a, _gray(2), "mef", "scene_7"), a)


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie waiting for its reaper is dead too


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_command_teacher_times_out_and_kills_the_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids.txt"
    script = _script(
        tmp_path,
        "sleepy.py",
        f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
        """,
    )
    with pytest.raises(InputError, match=r"timed out after 1 s"):
        _fuse(_command(script, timeout=1), _gray(1), _gray(2), "ivf", "p1")
    for pid in map(int, pids.read_text().split()):
        deadline = time.monotonic() + 60  # only a guard against a hang: the kill is immediate
        while not _dead(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _dead(pid), f"process {pid} survived the timeout"


def test_command_teacher_that_writes_nothing(tmp_path: Path) -> None:
    script = _script(tmp_path, "lazy.py", "print('done')\n")
    with pytest.raises(InputError, match=r"wrote no output to .*out\.png for pair 'p1'"):
        _fuse(_command(script), _gray(1), _gray(2), "ivf", "p1")
    with pytest.raises(SkippedPair, match="wrote no output"):
        _fuse(_command(script, on_missing="skip"), _gray(1), _gray(2), "ivf", "p1")


def test_command_teacher_failure_reports_exit_code_and_stderr(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "broken.py",
        "import sys\nsys.stderr.write('model weights missing\\n')\nsys.exit(3)\n",
    )
    with pytest.raises(InputError, match=r"broken\.py.*exit code 3(.|\n)*model weights missing"):
        _fuse(_command(script), _gray(1), _gray(2), "ivf", "p1")


def test_command_teacher_missing_program(tmp_path: Path) -> None:
    spec = {"kind": "command", "argv": [str(tmp_path / "no-such-program"), "{out}"]}
    with pytest.raises(InputError, match="cannot start"):
        _fuse(spec, _gray(1), _gray(2), "ivf", "p1")


# ---------------------------------------------------------------------------------- torchscript


class _MaxFusion(torch.nn.Module):
    def forward(self, y_a: torch.Tensor, y_b: torch.Tensor) -> torch.Tensor:
        return torch.maximum(y_a, y_b)


class _WrongShape(torch.nn.Module):
    def forward(self, y_a: torch.Tensor, y_b: torch.Tensor) -> torch.Tensor:
        return y_a[:, :, 1:, :]


def _scripted(tmp_path: Path, module: torch.nn.Module, name: str = "model.pt") -> Path:
    path = tmp_path / name
    torch.jit.save(torch.jit.script(module), str(path))
    return path


def test_torchscript_teacher_fuses_luminance(tmp_path: Path) -> None:
    spec = {"kind": "torchscript", "path": str(_scripted(tmp_path, _MaxFusion()))}
    teacher = build_external_teacher("max_ts", spec)
    a, b = _gray(1), _gray(2)
    np.testing.assert_array_equal(teacher.fuse(a, b, "mif", pair="p1"), np.maximum(a, b))
    a, b = _gray(3), _rgb(4)
    fused = teacher.fuse(a, b, "ivf", pair="p2")
    expected = fuse_color(a, b, "ivf", np.maximum)
    assert fused.shape == (H, W, 3)
    assert np.abs(fused.astype(int) - expected).max() <= 1  # float32 model vs float64 reference
    # Picklable (for worker processes): the module is reloaded on first use.
    clone = pickle.loads(pickle.dumps(teacher.fuse))
    np.testing.assert_array_equal(clone(a, b, "ivf", pair="p2"), fused)


def test_torchscript_teacher_checks_the_output_shape(tmp_path: Path) -> None:
    spec = {"kind": "torchscript", "path": str(_scripted(tmp_path, _WrongShape()))}
    with pytest.raises(
        InputError, match=r"returned \(1, 1, 23, 32\).*expected a tensor of shape \(1, 1, 24, 32\)"
    ):
        _fuse(spec, _gray(1), _gray(2), "ivf", "p1")


def test_torchscript_refuses_other_files(tmp_path: Path) -> None:
    state_dict = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state_dict)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(256))
    for path in (state_dict, junk):
        with pytest.raises(InputError, match="not a TorchScript file"):
            build_external_teacher("ts", {"kind": "torchscript", "path": str(path)})
    with pytest.raises(InputError, match="no such file"):
        build_external_teacher("ts", {"kind": "torchscript", "path": str(tmp_path / "none.pt")})


# ---------------------------------------------------------------------------------- discovery


def test_discover_priors_on_a_fake_tree(tmp_path: Path) -> None:
    root = tmp_path / "priors"
    for method in ("M1", "M 2", "10x", ".hidden"):
        _save(root / "ivf" / "SetA" / method / "p1.png", _gray(1))
    (root / "ivf" / "SetA" / "empty").mkdir()
    _save(root / "mff" / "SetB" / "X" / "p1.jpg", _rgb(1))
    datasets = {
        "ivf_SetA": {"task": "ivf", "path": "/data/ivf/SetA"},  # from a data_root
        "mine": {"task": "ivf", "path": "/elsewhere/SetA"},  # matched by folder name
        "mff_SetB": {"task": "mff", "source": "synthetic"},  # matched by <task>_<dataset>
        "wrong_task": {"task": "mef", "path": "/data/mef/SetA"},
        "syn": {"task": "ivf", "source": "synthetic"},
    }
    found = discover_priors(root, datasets)
    assert list(found) == list(datasets)
    assert list(found["ivf_SetA"]) == ["10x", "M1", "M_2"]
    assert list(found["mine"]) == ["10x", "M1", "M_2"]
    assert list(found["mff_SetB"]) == ["X"]
    assert found["wrong_task"] == {} and found["syn"] == {}
    spec = found["ivf_SetA"]["M_2"]
    assert spec["kind"] == "precomputed" and Path(spec["path"]) == root / "ivf" / "SetA" / "M 2"
    assert spec["tasks"] == ["ivf"] and spec["datasets"] == ["ivf_SetA"]
    teacher = build_external_teacher("M_2", spec)
    np.testing.assert_array_equal(teacher.fuse(_gray(7), _gray(8), "ivf", pair="p1"), _gray(1))


def test_discover_priors_rejects_clashing_names(tmp_path: Path) -> None:
    root = tmp_path / "priors"
    for method in ("M 2", "M_2"):
        _save(root / "ivf" / "SetA" / method / "p1.png", _gray(1))
    with pytest.raises(InputError, match=r"teacher name 'M_2'"):
        discover_priors(root, {"ivf_SetA": {"task": "ivf"}})
    with pytest.raises(InputError, match="no such folder"):
        discover_priors(tmp_path / "none", {})


def test_sanitize_teacher_name() -> None:
    assert sanitize_teacher_name("Swin Fusion (v2)") == "Swin_Fusion_v2_"
    assert sanitize_teacher_name("_x") == "t_x"
    assert sanitize_teacher_name("U2Fusion") == "U2Fusion"


def test_discover_real_priors(shared_data: Path) -> None:
    priors = shared_data / "priors"
    datasets = resolve_datasets({"data_root": str(shared_data)})
    found = discover_priors(priors, datasets)
    assert sorted(found["ivf_VIFB"]) == sorted(
        ["CNN", "DLF", "IFCNN", "ResNet", "SeAFusion", "SwinFusion", "U2Fusion", "YDTR"]
    )
    assert sorted(found["mff_Lytro"]) == ["CNN", "DPRL", "ECNN", "IFCNN", "SESF"]
    assert found["ivf_TNO"] == {}
    # One real result through its teacher: right size, RGB as published.
    spec = found["ivf_VIFB"]["SwinFusion"]
    pair = sorted(p.stem for p in (shared_data / "ivf" / "VIFB" / "ir").glob("*.png"))[0]
    a = read_image(shared_data / "ivf" / "VIFB" / "ir" / f"{pair}.png")
    b = read_image(shared_data / "ivf" / "VIFB" / "vi" / f"{pair}.png")
    fused = build_external_teacher("SwinFusion", spec).fuse(a, b, "ivf", pair=pair)
    assert fused.dtype == np.uint8 and fused.shape[:2] == a.shape[:2]
