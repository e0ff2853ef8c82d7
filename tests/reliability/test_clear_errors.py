"""Bad input at the edges gives one sentence that names the file or key and the way out: a
damaged tracking store, a task the checkpoint never learned, an output that cannot be written, a
failed job, weights of another architecture, a damaged parent.json, a wrong archive subdir, the
same folder for both sources, a table's suffix, images smaller than SSIM's window."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from fusionfm import fuse as fuse_module
from fusionfm import tracking
from fusionfm.cli import main as cli_main
from fusionfm.config import DatasetSpec, SplitSpec
from fusionfm.data.build import build_dataset
from fusionfm.io import InputError, write_image
from fusionfm.metrics import compute_metrics
from fusionfm.models import FusionUNet, UNetConfig
from fusionfm.train.checkpoint import load_model, model_payload, save_checkpoint

from ..workflow.conftest import run_snakemake

TINY_MODEL = {"base_channels": 8, "depth": 2, "time_dim": 8, "max_groups": 4}
RNG = np.random.default_rng(0)


@pytest.fixture
def tiny_workdir(tmp_path: Path, repo_root: Path) -> Path:
    (tmp_path / "config.yaml").write_text(
        (repo_root / "tests" / "config" / "tiny.yaml").read_text()
    )
    return tmp_path


def _checkpoint(path: Path, tasks: list[str], model: dict | None = None) -> Path:
    net = FusionUNet(UNetConfig.from_dict(model or TINY_MODEL))
    save_checkpoint(path, model_payload(net, tasks[-1], tasks, 1, {}))
    return path


def _pair(folder: Path, size: tuple[int, int] = (24, 32)) -> tuple[Path, Path]:
    a, b = folder / "a" / "p.png", folder / "b" / "p.png"
    write_image(a, RNG.integers(0, 256, size, np.uint8))
    write_image(b, RNG.integers(0, 256, size, np.uint8))
    return a, b


# --- tracking -----------------------------------------------------------------------------------


def test_corrupt_tracking_store_is_one_line_naming_the_file_and_the_ways_out(
    tiny_workdir: Path,
) -> None:
    store = tiny_workdir / "results" / "mlflow" / "mlflow.db"
    store.parent.mkdir(parents=True)
    store.write_bytes(b"this is not an SQLite database " * 8)
    result = run_snakemake(
        tiny_workdir, "--cores", "1", "results/datasets/syn_ivf/manifest.parquet", check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    line = next(line for line in output.splitlines() if "mlflow.db" in line)
    assert line.startswith("error: results/mlflow/mlflow.db: not a readable MLflow SQLite store")
    assert "mv results/mlflow/mlflow.db" in line and "FUSIONFM_TRACKING=0" in line
    assert "Traceback" not in output and "DatabaseError" not in output
    assert not (tiny_workdir / "results" / "datasets").exists()  # no job ran


def test_damaged_parent_json_finds_the_trees_parent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path.as_posix()}/db/mlflow.db")
    monkeypatch.delenv("FUSIONFM_TRACKING", raising=False)
    parent = Path("results/mlflow/parent.json")
    first = tracking.ensure_parent_run(parent, "fusionfm")
    parent.write_text("{ damaged")
    second = tracking.ensure_parent_run(parent, "fusionfm")
    assert second["run_id"] == first["run_id"]
    assert json.loads(parent.read_text())["run_id"] == first["run_id"]
    from mlflow import MlflowClient

    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    parents = client.search_runs(
        [first["experiment_id"]], filter_string="tags.`fusionfm.role` = 'parent'"
    )
    assert len(parents) == 1


# --- fuse ---------------------------------------------------------------------------------------


def test_fuse_refuses_a_task_the_checkpoint_never_learned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _checkpoint(tmp_path / "model.pt", ["ivf"])
    a, b = _pair(tmp_path)
    out = tmp_path / "fused.png"
    args = ["fuse", "--model", str(model), "--task", "mff", str(a), str(b), "-o", str(out)]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "has not learned task 'mff'; it learned: ivf" in err and "--allow-untrained-task" in err
    assert not out.exists()
    assert cli_main([*args, "--allow-untrained-task"]) == 0 and out.is_file()
    assert (
        cli_main(["fuse", "--model", str(model), "--task", "ivf", str(a), str(b), "-o", str(out)])
        == 0
    )


def test_output_under_a_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _checkpoint(tmp_path / "model.pt", ["ivf"])
    a, b = _pair(tmp_path)
    (tmp_path / "taken").write_text("a file")
    out = tmp_path / "taken" / "fused.png"
    assert (
        cli_main(["fuse", "--model", str(model), "--task", "ivf", str(a), str(b), "-o", str(out)])
        == 2
    )
    err = capsys.readouterr().err
    assert f"{out}: cannot create its folder" in err and f"{tmp_path / 'taken'} is a file" in err
    assert "Traceback" not in err and ".tmp" not in err


def test_unwritable_output_folder_is_named_before_any_pair_is_fused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A read-only folder (simulated: the tests run as root, whom permissions do not stop)."""
    model = _checkpoint(tmp_path / "model.pt", ["ivf"])
    _pair(tmp_path)
    out_dir = tmp_path / "read_only"
    out_dir.mkdir()
    real_temporary_file = tempfile.TemporaryFile
    real_mkstemp = tempfile.mkstemp

    def refuse_in_out_dir(real):
        def call(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's own keyword
            if dir is not None and Path(dir) == out_dir:
                raise PermissionError(13, "Permission denied")
            return real(*args, dir=dir, **kwargs)

        return call

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse_in_out_dir(real_temporary_file))
    monkeypatch.setattr(tempfile, "mkstemp", refuse_in_out_dir(real_mkstemp))
    fused = []
    monkeypatch.setattr(fuse_module, "fuse_images", lambda *a, **k: fused.append(1))
    args = [
        "fuse",
        "--model",
        str(model),
        "--task",
        "ivf",
        str(tmp_path / "a"),
        str(tmp_path / "b"),
    ]
    assert cli_main([*args, "-o", str(out_dir), "-q"]) == 2
    assert f"{out_dir}: cannot write in this folder (Permission denied)" in capsys.readouterr().err
    assert fused == []  # refused before the first pair's work
    # one file: the message names the path given, not the temporary file beside it
    single = ["fuse", "--model", str(model), "--task", "ivf", str(tmp_path / "a" / "p.png")]
    single += [str(tmp_path / "b" / "p.png"), "-o", str(out_dir / "f.png")]
    monkeypatch.setattr(fuse_module, "fuse_images", lambda *a, **k: np.zeros((24, 32), np.uint8))
    assert cli_main(single) == 2
    err = capsys.readouterr().err
    assert f"{out_dir / 'f.png'}: cannot write in {out_dir} (Permission denied)" in err
    assert ".tmp" not in err


def test_weights_of_another_architecture_are_one_line(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "model.pt", ["ivf"])
    payload = torch.load(path, weights_only=True)
    payload["model_config"] = {**payload["model_config"], "base_channels": 16}
    torch.save(payload, path)
    with pytest.raises(InputError) as err:
        load_model(path)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    assert "weights do not fit the model config" in message and "of another shape" in message


# --- jobs ---------------------------------------------------------------------------------------


def test_a_failed_job_shows_its_one_line_message_and_keeps_the_traceback_in_its_log(
    tmp_path: Path,
) -> None:
    source = tmp_path / "pairs"
    _pair(source)
    (source / "a" / "q.png").write_bytes(b"truncated, not a PNG")
    write_image(source / "b" / "q.png", RNG.integers(0, 256, (24, 32), np.uint8))
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = {
        "datasets": {
            "mine": {"task": "ivf", "modalities": ["a", "b"], "source": "dir", "path": str(source)}
        },
        "mlflow": {"enabled": False},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(
        workdir, "--cores", "1", "results/datasets/mine/manifest.parquet", check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"error: {source / 'a' / 'q.png'}" in output
    assert "Traceback" not in output and "InputError" not in output
    log = (workdir / "logs" / "prepare_dataset" / "mine.log").read_text()
    assert log.startswith(f"error: {source / 'a' / 'q.png'}: not a readable image")
    assert "Traceback" in log


def test_same_folder_for_both_sources_fails_the_dry_run(tiny_workdir: Path) -> None:
    config = yaml.safe_load((tiny_workdir / "config.yaml").read_text())
    config["datasets"]["syn_ivf"]["modalities"] = ["ir", "ir"]
    (tiny_workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tiny_workdir, "-n", "--cores", "1", "all", check=False)
    assert result.returncode != 0
    assert "error: config datasets.syn_ivf.modalities: ['ir', 'ir'] has non-unique elements" in (
        result.stdout + result.stderr
    )


def test_wrong_archive_subdir_lists_the_archives_folders(tmp_path: Path) -> None:
    root = tmp_path / "extracted"
    _pair(root / "Release" / "TNO")
    spec = DatasetSpec.from_dict(
        "tno",
        {
            "task": "ivf",
            "modalities": ["a", "b"],
            "source": "url",
            "url": "https://example.org/t.zip",
            "sha256": "0" * 64,
            "subdir": "TNO",
        },
    )
    with pytest.raises(InputError) as err:
        build_dataset(
            spec,
            tmp_path / "images",
            tmp_path / "m.parquet",
            SplitSpec(),
            source_root=root,
            progress=False,
        )
    message = str(err.value)
    assert (
        "datasets.tno.subdir: 'TNO' is not a folder of the archive https://example.org/t.zip"
        in message
    )
    assert "Release, Release/TNO, Release/TNO/a, Release/TNO/b" in message


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_table_suffix_decides_the_format(tmp_path: Path) -> None:
    for stem in ("1", "2"):
        for folder in ("f", "a", "b"):
            write_image(tmp_path / folder / f"{stem}.png", RNG.integers(0, 256, (16, 16), np.uint8))
    folders = [str(tmp_path / f) for f in ("f", "a", "b")]
    assert cli_main(["metrics", *folders, "-o", str(tmp_path / "s.csv")]) == 0
    table = pd.read_csv(tmp_path / "s.csv")
    assert len(table) == 2 and "SSIM" in table.columns
    assert cli_main(["metrics", *folders, "-o", str(tmp_path / "s.parquet")]) == 0
    assert pd.read_parquet(tmp_path / "s.parquet").shape == table.shape
    assert cli_main(["metrics", *folders, "-o", str(tmp_path / "s.txt")]) == 2
    assert not (tmp_path / "s.txt").exists()


def test_ssim_on_images_smaller_than_its_window_is_a_clear_error() -> None:
    a, b = RNG.integers(0, 256, (6, 40)).astype(float), RNG.integers(0, 256, (6, 40)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way
        with pytest.raises(InputError, match=r"images of 40x6 pixels are smaller than SSIM's 7x7"):
            compute_metrics((a + b) / 2, a, b)
        scores = compute_metrics((a + b) / 2, a, b, metrics=("EN", "SD", "MI"))
    assert set(scores) == {"EN", "SD", "MI"}
    with pytest.raises(InputError, match=r"smaller than SSIM_gt's 11x11"):
        big = RNG.integers(0, 256, (9, 40)).astype(float)
        compute_metrics(big, big, big, ground_truth=big)
