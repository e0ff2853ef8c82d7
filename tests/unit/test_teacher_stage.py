"""The teacher stage: one teacher over a built dataset, atomic outputs, workers, teacher choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fusionfm.config import DatasetSpec, SplitSpec
from fusionfm.data.build import build_dataset
from fusionfm.io import TIMING_SCHEMA, InputError, read_image, read_table
from fusionfm.teacher.registry import run_teacher
from fusionfm.teacher.stage import resolve_teacher, run_teacher_stage, teacher_names_for

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

PAIRS = 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic ivf dataset (4 pairs, 32x40), built like the workflow builds it."""
    root = tmp_path_factory.mktemp("dataset")
    spec = DatasetSpec.from_dict(
        "tiny",
        {
            "task": "ivf",
            "modalities": ["ir", "vi"],
            "source": "synthetic",
            "synthetic": {"pairs": PAIRS, "height": 32, "width": 40, "seed": 3},
        },
    )
    build_dataset(spec, root / "images", root / "manifest.parquet", SplitSpec(), progress=False)
    return root


def _manifest(dataset: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    frame = read_table(dataset / "manifest.parquet")
    return [
        (r.pair, read_image(dataset / r.path_a), read_image(dataset / r.path_b))
        for r in frame.itertuples()
    ]


def _outputs(tmp_path: Path, name: str = "out") -> tuple[Path, Path]:
    out = tmp_path / name
    return out / "images", out / "timing.parquet"


def _pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_image(p) for p in sorted(folder.iterdir())}


def test_builtin_teacher_over_a_dataset(dataset: Path, tmp_path: Path) -> None:
    images, timing = _outputs(tmp_path)
    frame = run_teacher_stage(
        dataset, "ivf", "average", {"weight_a": 0.3}, images, timing, progress=False
    )
    pairs = _manifest(dataset)
    assert sorted(p.name for p in images.iterdir()) == sorted(f"{p}.png" for p, _, _ in pairs)
    for pair, a, b in pairs:
        expected = run_teacher("average", a, b, "ivf", {"weight_a": 0.3})
        np.testing.assert_array_equal(read_image(images / f"{pair}.png"), expected)
    stored = read_table(timing, TIMING_SCHEMA)
    assert list(stored.columns) == TIMING_SCHEMA.names
    assert stored["pair"].tolist() == [p for p, _, _ in pairs]  # manifest order
    assert set(stored["teacher"]) == {"average"} and set(stored["status"]) == {"ok"}
    assert (stored["seconds"] >= 0).all() and stored["message"].isna().all()
    assert frame.equals(stored)


def test_workers_do_not_change_the_outputs(dataset: Path, tmp_path: Path) -> None:
    serial, serial_timing = _outputs(tmp_path, "serial")
    pooled, pooled_timing = _outputs(tmp_path, "pooled")
    run_teacher_stage(dataset, "ivf", "guided_filter", None, serial, serial_timing, progress=False)
    run_teacher_stage(
        dataset, "ivf", "guided_filter", {}, pooled, pooled_timing, workers=2, progress=False
    )
    one, two = _pixels(serial), _pixels(pooled)
    assert list(one) == list(two) and len(one) == PAIRS
    for name in one:
        np.testing.assert_array_equal(one[name], two[name])
    columns = ["pair", "teacher", "status", "message"]
    assert read_table(serial_timing)[columns].equals(read_table(pooled_timing)[columns])


class _Brighter(torch.nn.Module):
    def forward(self, y_a: torch.Tensor, y_b: torch.Tensor) -> torch.Tensor:
        return torch.clamp(torch.maximum(y_a, y_b) * 1.1, 0.0, 1.0)


def test_torchscript_teacher_in_worker_processes(dataset: Path, tmp_path: Path) -> None:
    model = tmp_path / "brighter.pt"
    torch.jit.save(torch.jit.script(_Brighter()), str(model))
    spec = {"kind": "torchscript", "path": str(model)}
    serial, serial_timing = _outputs(tmp_path, "serial")
    pooled, pooled_timing = _outputs(tmp_path, "pooled")
    run_teacher_stage(dataset, "ivf", "bright", spec, serial, serial_timing, progress=False)
    run_teacher_stage(
        dataset, "ivf", "bright", spec, pooled, pooled_timing, workers=2, progress=False
    )
    one, two = _pixels(serial), _pixels(pooled)
    assert list(one) == list(two) and len(one) == PAIRS
    for name in one:
        np.testing.assert_array_equal(one[name], two[name])


def _precomputed(dataset: Path, folder: Path, drop: str | None) -> Path:
    """A method folder with a result (source A) for every pair but ``drop``."""
    for pair, a, _ in _manifest(dataset):
        if pair != drop:
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(a).save(folder / f"{pair}.png")
    return folder


def test_skipped_pairs_are_recorded(dataset: Path, tmp_path: Path) -> None:
    pairs = [p for p, _, _ in _manifest(dataset)]
    folder = _precomputed(dataset, tmp_path / "Method", drop=pairs[1])
    spec = {"kind": "precomputed", "path": str(folder), "on_missing": "skip"}
    images, timing = _outputs(tmp_path)
    frame = run_teacher_stage(dataset, "ivf", "Method", spec, images, timing, progress=False)
    assert frame["status"].tolist() == ["ok", "skipped", "ok", "ok"]
    assert frame.loc[1, "seconds"] == 0.0 and pairs[1] in frame.loc[1, "message"]
    assert sorted(p.stem for p in images.iterdir()) == sorted(set(pairs) - {pairs[1]})


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_teacher_leaves_nothing(dataset: Path, tmp_path: Path, workers: int) -> None:
    pairs = [p for p, _, _ in _manifest(dataset)]
    folder = _precomputed(dataset, tmp_path / "Method", drop=pairs[-1])
    spec = {"kind": "precomputed", "path": str(folder)}  # on_missing: error
    images, timing = _outputs(tmp_path)
    with pytest.raises(InputError, match=f"no result for pair '{pairs[-1]}'"):
        run_teacher_stage(
            dataset, "ivf", "Method", spec, images, timing, workers=workers, progress=False
        )
    leftovers = sorted(p.name for p in images.parent.rglob("*"))
    assert leftovers == [], f"left behind: {leftovers}"


def test_a_failure_keeps_an_older_complete_output(dataset: Path, tmp_path: Path) -> None:
    images, timing = _outputs(tmp_path)
    run_teacher_stage(dataset, "ivf", "average", None, images, timing, progress=False)
    before = _pixels(images)
    with pytest.raises(InputError, match="unknown parameter"):
        run_teacher_stage(dataset, "ivf", "average", {"sigma": 2}, images, timing, progress=False)
    after = _pixels(images)
    assert list(before) == list(after) and timing.is_file()


def test_task_checks(dataset: Path, tmp_path: Path) -> None:
    images, timing = _outputs(tmp_path)
    spec = {"kind": "precomputed", "path": str(tmp_path), "tasks": ["mff"]}
    with pytest.raises(InputError, match=r"teacher 'mffonly' does not serve task 'ivf'"):
        run_teacher_stage(dataset, "ivf", "mffonly", spec, images, timing, progress=False)
    with pytest.raises(InputError, match=r"dataset's task is ivf.*task 'mff'"):
        run_teacher_stage(dataset, "mff", "average", None, images, timing, progress=False)
    with pytest.raises(InputError, match="no such manifest"):
        run_teacher_stage(tmp_path, "ivf", "average", None, images, timing, progress=False)
    assert not images.parent.exists() or not any(images.parent.iterdir())


def test_resolve_teacher(tmp_path: Path) -> None:
    teacher, params = resolve_teacher("average", {"weight_a": 0.4})
    assert teacher.builtin and params == {"weight_a": 0.4}
    teacher, params = resolve_teacher("ext", {"kind": "precomputed", "path": str(tmp_path)})
    assert not teacher.builtin and params == {}
    with pytest.raises(InputError, match=r"'average' is used by a built-in teacher"):
        resolve_teacher("average", {"kind": "precomputed", "path": str(tmp_path)})
    with pytest.raises(InputError, match="unknown teacher 'nope'"):
        resolve_teacher("nope", {})


def test_teacher_names_for(tmp_path: Path) -> None:
    builtins = {"average": {}, "two_scale_saliency": {"mean_size": 5}, "max_abs": None}
    path = str(tmp_path)
    externals = {
        "ivf_only": {"kind": "precomputed", "path": path, "tasks": ["ivf"]},
        "for_other": {"kind": "precomputed", "path": path, "datasets": ["other"]},
        "anywhere": {"kind": "command", "argv": ["x", "{out}"]},
    }
    assert teacher_names_for("ivf", builtins, externals, "tiny") == [
        "average",
        "two_scale_saliency",
        "max_abs",
        "ivf_only",
        "anywhere",
    ]
    assert teacher_names_for("mef", builtins, externals, "other") == [
        "average",
        "max_abs",
        "for_other",
        "anywhere",
    ]
    with pytest.raises(InputError, match="'average'"):
        teacher_names_for("ivf", builtins, {"average": externals["anywhere"]}, "tiny")
    misspelt = {**builtins, "two_scale_saliency": {"mean_sise": 5}}
    with pytest.raises(
        InputError, match="unknown parameter\\(s\\) 'mean_sise'; accepted: mean_size"
    ):
        teacher_names_for("ivf", misspelt, externals, "tiny")
    with pytest.raises(InputError, match="'guided_filter'"):  # a built-in not listed still clashes
        teacher_names_for("ivf", {}, {"guided_filter": externals["anywhere"]}, "tiny")
    with pytest.raises(InputError, match="unknown teacher 'nope'"):
        teacher_names_for("ivf", {"nope": {}}, {}, "tiny")
    with pytest.raises(InputError, match="unknown task"):
        teacher_names_for("xyz", builtins, externals, "tiny")
