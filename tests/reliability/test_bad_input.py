"""Bad or unusual input: what works (16-bit, RGBA) and what fails with a message naming it.

Complements the unit and workflow tests that already cover most of the list (see each test's
docstring): a 16-bit / RGBA dataset through build, teachers and metrics; a ``command`` teacher
that hangs or writes nothing, inside the teacher stage; malicious checkpoints on every path that
loads one; config errors that must name the key at ``snakemake -n``.
"""

from __future__ import annotations

import pickle
import struct
import sys
import textwrap
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from fusionfm.config import DatasetSpec, SplitSpec
from fusionfm.data.build import build_dataset
from fusionfm.io import MANIFEST_SCHEMA, InputError, read_image, read_table
from fusionfm.pseudolabel.scoring import score_dataset
from fusionfm.teacher.stage import run_teacher_stage
from fusionfm.train.checkpoint import load_model
from fusionfm.train.data import load_task_data
from fusionfm.train.trainer import default_state_path, train_task
from tests.unit.test_train_data import make_task_dataset
from tests.unit.test_trainer import tiny_config
from tests.workflow.conftest import run_snakemake

H, W = 40, 48
RNG = np.random.default_rng(7)


def _to_8bit(values: np.ndarray) -> np.ndarray:
    """The documented 16-bit rule: 0..65535 scaled linearly to 0..255, rounded."""
    return np.round(values * (255 / 65535)).astype(np.uint8)


def _png16(path: Path, array: np.ndarray) -> Path:
    """A 16-bit gray (H, W) or gray+alpha (H, W, 2) PNG, encoded by hand (neither Pillow nor
    OpenCV writes 16-bit gray+alpha)."""
    height, width = array.shape[:2]
    color_type = {2: 0, 3: 4}[array.ndim]
    rows = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


def _cv2(path: Path, rgb: np.ndarray) -> Path:
    """A 16-bit RGB or RGBA file through OpenCV (channels in its BGR(A) order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    order = [2, 1, 0] if rgb.shape[2] == 3 else [2, 1, 0, 3]
    assert cv2.imwrite(str(path), rgb[:, :, order])
    return path


def _pil(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(scope="module")
def deep_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """An IVF folder of 16-bit PNG/TIFF (gray, gray+alpha, RGB, RGBA) and RGBA PNG pairs, built.

    Returns:
        The built dataset folder and the expected 8-bit sources by ``<modality>/<pair>``.
    """
    root = tmp_path_factory.mktemp("deep")
    src = root / "src"
    gray16 = [RNG.integers(0, 65536, (H, W), dtype=np.uint16) for _ in range(4)]
    alpha16 = RNG.integers(0, 65536, (H, W), dtype=np.uint16)
    rgb16 = [RNG.integers(0, 65536, (H, W, 3), dtype=np.uint16) for _ in range(3)]
    rgba8 = RNG.integers(0, 256, (H, W, 4), dtype=np.uint8)
    gray_rgba8 = np.dstack([np.repeat(rgba8[:, :, :1], 3, axis=2), rgba8[:, :, 3:]])
    alpha_rgba16 = np.dstack([rgb16[2], alpha16])
    _pil(src / "ir" / "1.png", gray16[0])  # 16-bit gray PNG
    _pil(src / "vi" / "1.png", rgba8)  # RGBA PNG
    _pil(src / "ir" / "2.tif", gray16[1])  # 16-bit gray TIFF
    _cv2(src / "vi" / "2.png", rgb16[0])  # 16-bit RGB PNG
    _png16(src / "ir" / "3.png", np.dstack([gray16[2], alpha16]))  # 16-bit gray+alpha PNG
    _cv2(src / "vi" / "3.tif", rgb16[1])  # 16-bit RGB TIFF
    _pil(src / "ir" / "4.png", gray_rgba8)  # gray stored as RGBA
    _cv2(src / "vi" / "4.png", alpha_rgba16)  # 16-bit RGBA PNG
    expected = {
        "ir/1": _to_8bit(gray16[0]),
        "vi/1": rgba8[:, :, :3],
        "ir/2": _to_8bit(gray16[1]),
        "vi/2": _to_8bit(rgb16[0]),
        "ir/3": _to_8bit(gray16[2]),
        "vi/3": _to_8bit(rgb16[1]),
        "ir/4": rgba8[:, :, 0],
        "vi/4": _to_8bit(rgb16[2]),
    }
    spec = DatasetSpec.from_dict(
        "deep", {"task": "ivf", "modalities": ["ir", "vi"], "source": "dir", "path": str(src)}
    )
    out = root / "dataset"
    build_dataset(spec, out / "images", out / "manifest.parquet", SplitSpec(), progress=False)
    return out, expected


def test_sixteen_bit_and_rgba_pairs_build_and_go_through_teachers_and_metrics(
    deep_dataset: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    dataset, expected = deep_dataset
    manifest = read_table(dataset / "manifest.parquet", MANIFEST_SCHEMA)
    assert manifest["pair"].tolist() == ["1", "2", "3", "4"]
    assert manifest["channels_a"].tolist() == [1, 1, 1, 1]  # gray+alpha and gray RGBA: gray
    assert manifest["channels_b"].tolist() == [3, 3, 3, 3]  # alpha dropped
    for row in manifest.itertuples():
        for modality, path in (("ir", row.path_a), ("vi", row.path_b)):
            stored, want = read_image(dataset / path), expected[f"{modality}/{row.pair}"]
            assert stored.shape == want.shape, (modality, row.pair)
            # Pillow itself reduces 16-bit files of several channels to 8 bits (high byte).
            tolerance = 1 if f"{modality}/{row.pair}" in ("vi/2", "ir/3", "vi/3", "vi/4") else 0
            diff = np.abs(stored.astype(int) - want).max()
            assert diff <= tolerance, (modality, row.pair, diff)

    teachers = ["average", "max_abs", "laplacian_pyramid", "dwt", "guided_filter"]
    images = {}
    for name in teachers:
        images[name] = tmp_path / name / "images"
        timing = run_teacher_stage(
            dataset, "ivf", name, None, images[name], tmp_path / name / "timing.parquet",
            progress=False,
        )  # fmt: skip
        assert (timing["status"] == "ok").all(), timing
        for pair in manifest["pair"]:
            fused = read_image(images[name] / f"{pair}.png")
            assert fused.shape == (H, W, 3)  # the visible image's chroma is kept
    scores = score_dataset(dataset, "ivf", images, tmp_path / "scores.parquet", progress=False)
    fused_scores = scores[scores["role"] == "teacher"]
    assert set(fused_scores["candidate"]) == set(teachers)
    assert set(fused_scores["pair"]) == set(manifest["pair"])
    for metric in ("EN", "SD", "MI", "VIF", "Qabf", "SSIM", "CC", "SAL"):
        values = fused_scores.loc[fused_scores["metric"] == metric, "value"]
        assert len(values) == len(teachers) * 4 and np.isfinite(values).all(), metric


# --- command teachers inside the teacher stage ---------------------------------------------------


def _command_spec(tmp_path: Path, body: str, **extra: object) -> dict:
    script = tmp_path / "method.py"
    script.write_text(textwrap.dedent(body))
    return {
        "kind": "command",
        "argv": [sys.executable, str(script), "{a}", "{b}", "{out}"],
        **extra,
    }


def _assert_nothing_written(folder: Path) -> None:
    assert not folder.exists() or not list(folder.iterdir()), sorted(folder.rglob("*"))


def test_hanging_command_teacher_fails_the_stage_naming_teacher_and_pair(
    deep_dataset: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    spec = _command_spec(tmp_path, "import time\ntime.sleep(120)\n", timeout=1)
    out = tmp_path / "out"
    with pytest.raises(InputError) as err:
        run_teacher_stage(
            deep_dataset[0], "ivf", "slow_method", spec, out / "images", out / "timing.parquet",
            workers=2, progress=False,
        )  # fmt: skip
    message = str(err.value)
    assert message.startswith("external teacher 'slow_method': command ")
    assert "method.py" in message
    assert "timed out after 1 s on pair '1' and was killed" in message, message
    _assert_nothing_written(out)


def test_command_teacher_writing_nothing_fails_the_stage(
    deep_dataset: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    spec = _command_spec(tmp_path, "print('fused, honestly')\n")
    out = tmp_path / "out"
    with pytest.raises(InputError) as err:
        run_teacher_stage(
            deep_dataset[0], "ivf", "lazy_method", spec, out / "images", out / "timing.parquet",
            progress=False,
        )  # fmt: skip
    message = str(err.value)
    assert message.startswith("external teacher 'lazy_method': command ")
    assert "wrote no output to" in message and "for pair '1'" in message
    _assert_nothing_written(out)


# --- checkpoints that are not plain tensors ------------------------------------------------------


class _Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))


def _malicious(path: Path, marker: Path, container: str) -> Path:
    """A file whose unpickling writes ``marker``: a bare pickle, or torch.save's zip format with
    the payload inside an otherwise well-formed fusionfm checkpoint dict."""
    if container == "pickle":
        path.write_bytes(pickle.dumps(_Payload(marker)))
    else:
        torch.save({"format": "fusionfm.train_state", "version": 1, "step": _Payload(marker)}, path)
    return path


@pytest.mark.parametrize("container", ["pickle", "torch-zip"])
def test_malicious_payloads_are_live(tmp_path: Path, container: str) -> None:
    """The control: these files do run code when unpickled the unsafe way."""
    marker = tmp_path / "marker"
    path = _malicious(tmp_path / "evil.pt", marker, container)
    if container == "pickle":
        pickle.loads(path.read_bytes())  # noqa: S301 - the point of the control
    else:
        torch.load(path, weights_only=False)
    assert marker.read_text() == "unpickled"


@pytest.fixture(scope="module")
def ivf_data(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ivf")
    return load_task_data([make_task_dataset(root, "ivf")], "ivf", crop=16)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("container", ["pickle", "torch-zip"])
@pytest.mark.parametrize("role", ["model", "train state", "previous stage"])
def test_malicious_checkpoint_is_refused_unpickled(
    tmp_path: Path, ivf_data, container: str, role: str
) -> None:
    marker = tmp_path / "marker"
    evil = _malicious(tmp_path / f"{role.replace(' ', '_')}.pt", marker, container)
    outs = {name: tmp_path / "out" / f"{name}.pt" for name in ("model", "ewc", "replay")}
    with pytest.raises(InputError) as err:
        if role == "model":  # what `fusionfm fuse --model` and the evaluation load
            load_model(evil)
        elif role == "train state":  # a rerun resumes from the file beside the model
            outs["model"].parent.mkdir()
            evil = evil.replace(default_state_path(outs["model"]))
            train_task(
                "ivf", ivf_data, tiny_config(), None, outs["model"], outs["ewc"], outs["replay"],
                resume_from=evil,
            )  # fmt: skip
        else:
            train_task(
                "ivf", ivf_data, tiny_config(), evil, outs["model"], outs["ewc"], outs["replay"]
            )
    assert str(err.value).startswith(f"{evil}: not a fusionfm checkpoint"), err.value
    assert "never unpickled" in str(err.value)
    assert not marker.exists()
    assert not any(path.exists() for path in outs.values())


# --- config errors at `snakemake -n` -------------------------------------------------------------


@pytest.fixture
def tiny_workdir(tmp_path: Path, repo_root: Path) -> Path:
    (tmp_path / "config.yaml").write_text(
        (repo_root / "tests" / "config" / "tiny.yaml").read_text()
    )
    return tmp_path


def _dry_run_with(workdir: Path, edit) -> str:
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    edit(config)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", "--cores", "1", "all", check=False)
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


def test_wrong_type_names_the_key_path(tiny_workdir: Path) -> None:
    """(tests/workflow/test_dag.py checks a misspelt dataset key and that a wrong type names
    the value; here: the path of the key, in the train section.)"""
    output = _dry_run_with(tiny_workdir, lambda c: c["train"].update(steps="many"))
    assert "error: config train.steps: 'many' is not of type 'integer'" in output
    assert "Traceback" not in output and len(output.splitlines()) < 5


def test_misspelt_section_is_named(tiny_workdir: Path) -> None:
    """One line naming the key and the allowed ones, not the whole schema (1,269 lines)."""
    output = _dry_run_with(tiny_workdir, lambda c: c.update(trian=c.pop("train")))
    assert "Additional properties are not allowed ('trian' was unexpected)" in output
    assert "allowed keys: ablations, data_root" in output
    assert len(output.splitlines()) < 5, output


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["train"].update(model={"base_channel": 8}), "base_channel"),
        (lambda c: c["teachers"]["builtin"].update(laplacian_pyramid={"levelz": 3}), "levelz"),
    ],
    ids=["train.model", "teacher parameter"],
)
def test_misspelt_nested_key_fails_the_dry_run(tiny_workdir: Path, edit, key: str) -> None:
    """The schema leaves train.model and the teachers' parameters open; the workflow checks
    them when it plans the DAG, before any job runs."""
    output = _dry_run_with(tiny_workdir, edit)
    assert key in output and ("train.model: unknown key" in output or "unknown parameter" in output)
