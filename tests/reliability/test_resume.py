"""A workflow killed mid-training (Snakemake and its jobs, SIGKILL) resumes to the same result.

The tree up to the last training stage is built once and copied. One copy runs through: the
reference. In the other, the whole process group of ``snakemake`` (target: the main run's
evaluation) is killed as soon as the last stage has written its periodic train state. Nothing a
later stage reads may then be half-written, and ``snakemake --unlock`` plus the same command
again must finish, resume from the train state (not from step 0) and end with bitwise the
weights and evaluation metrics of the reference.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from fusionfm.io import read_image
from fusionfm.train.checkpoint import load_checkpoint
from tests.workflow.conftest import REPO, SNAKEMAKE, run_snakemake

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

STEPS = 30  # the train state is written every STEPS // 10 steps
CONFIG = {
    "split": {"test_fraction": 0.25, "seed": 0},
    "datasets": {
        "syn_ivf": {
            "task": "ivf",
            "modalities": ["ir", "vi"],
            "source": "synthetic",
            "synthetic": {"pairs": 4, "height": 48, "width": 64, "seed": 1},
        },
        "syn_mif": {
            "task": "mif",
            "modalities": ["mri", "ct"],
            "source": "synthetic",
            "synthetic": {"pairs": 4, "height": 48, "width": 48, "seed": 2},
        },
    },
    "teachers": {"builtin": {"average": {}, "max_abs": {}}},
    "train": {
        "task_order": ["ivf", "mif"],
        "steps": STEPS,
        "warmup_steps": 2,
        "batch_size": 4,
        "crop": 32,
        "fisher_batches": 1,
        "replay_capacity": 4,
        "log_every": 5,
        "device": "cpu",  # bitwise-equal resume is promised on the CPU
        "model": {"base_channels": 8, "depth": 2},  # 50 k parameters: quick steps
    },
    "evaluate": {"steps": 1, "timing_steps": [1]},
    "mlflow": {"enabled": False},  # tracking is not what is tested here, and costs a minute
}
FIRST_STAGE = Path("results/train/main/00_ivf")
STAGE_DIR = Path("results/train/main/01_mif")  # the last stage: it resumes on top of 00_ivf
EVALUATE_DIR = Path("results/evaluate/main")
TARGET = str(EVALUATE_DIR / "summary.parquet")  # the main run's evaluation; not the ablations


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for kid in _children(todo.pop()):
            if kid not in found:
                found.add(kid)
                todo.append(kid)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _kill_group(process: subprocess.Popen) -> tuple[set[int], set[int]]:
    """SIGKILL Snakemake's process group, as a crash or an out-of-memory kill would.

    Returns:
        The job processes Snakemake had started, and those still alive after the kill (which
        are then killed one by one, so that none outlives the test).
    """
    jobs = _descendants(process.pid)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 60  # a hang guard: SIGKILLed processes die at once
    while any(map(_alive, jobs)) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = {pid for pid in jobs if _alive(pid)}
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    return jobs, survivors


def _is_temporary(path: Path) -> bool:
    """The atomic writers' temporaries (``.<name>.<random>.tmp``) beside the files they replace."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def _temporaries(results: Path) -> set[Path]:
    return {p.relative_to(results) for p in results.rglob("*") if _is_temporary(p)}


def _check_complete(results: Path) -> int:
    """Read every output a later stage could read, completely; return how many were read."""
    checked = 0
    for path in sorted(results.rglob("*")):
        if not path.is_file() or any(_is_temporary(p) for p in path.relative_to(results).parents):
            continue
        if _is_temporary(path) or "mlflow" in path.relative_to(results).parts:
            continue
        suffix = path.suffix
        if suffix == ".png":
            read_image(path)
        elif suffix == ".parquet":
            pq.read_table(path)
        elif suffix == ".pt":
            load_checkpoint(path)
        elif suffix == ".json":
            json.loads(path.read_text())
        else:
            continue
        checked += 1
    return checked


def _snapshot(workdir: Path) -> dict[str, Any]:
    """The final stage's files and the evaluation tables without their timings."""
    evaluate = workdir / EVALUATE_DIR
    table = pd.read_parquet(evaluate / "eval.parquet")
    summary = pd.read_parquet(evaluate / "summary.parquet")
    return {
        **{
            name: load_checkpoint(workdir / STAGE_DIR / name)
            for name in ("model.pt", "ewc.pt", "replay.pt")
        },
        "eval": table[~table["metric"].str.startswith("ms_per_image")].reset_index(drop=True),
        "summary": summary.drop(columns=[c for c in summary if c.startswith("ms_per_image")]),
        "forgetting": pd.read_parquet(evaluate / "forgetting.parquet"),
    }


def _assert_same(a: Any, b: Any, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f"{where}: differs (max |diff| {(a - b).abs().max()})"
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


PAUSE_HOOK = Path(__file__).with_name("pause_after_train_state")
"""A ``sitecustomize`` that stops a training job right after its first train state is written."""


def _start_snakemake(workdir: Path, *args: str, log: Path) -> subprocess.Popen:
    """``snakemake`` as :func:`run_snakemake` runs it, in the background, as a process-group
    leader, with its training job stopping (not exiting) once it has written a train state."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PAUSE_HOOK), environment.get("PYTHONPATH")])
    )
    with open(log, "w") as stream:
        return subprocess.Popen(
            [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args],
            stdout=stream,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=workdir,
            start_new_session=True,
        )


def _wait_for_train_state(process: subprocess.Popen, state: Path, log: Path) -> None:
    """Wait until the paused job has written ``state`` (it then waits for its kill, so there is
    no race); the deadline only guards against a hang."""
    hang_guard = time.monotonic() + 1200
    while not state.is_file():
        if process.poll() is not None:
            raise AssertionError(f"snakemake ended before {state} appeared:\n{log.read_text()}")
        if time.monotonic() > hang_guard:
            raise AssertionError(f"no {state} after 20 minutes:\n{log.read_text()}")
        time.sleep(0.2)


@pytest.mark.slow
def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    # Everything up to the last stage once, then two copies of that tree: one runs through,
    # the other is killed in the last stage's training and rerun.
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    reference.mkdir()
    (reference / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    run_snakemake(reference, "--cores", "2", str(FIRST_STAGE / "model.pt"))
    shutil.copytree(reference, killed, symlinks=True)  # copy2: modification times kept

    run_snakemake(reference, "--cores", "2", TARGET)
    state = STAGE_DIR / "model.state.pt"
    assert not (reference / state).exists()  # a finished stage removes its train state
    expected = _snapshot(reference)
    assert expected["summary"]["student_composite"].notna().all()

    log = tmp_path / "killed.log"
    process = _start_snakemake(killed, "--cores", "2", TARGET, log=log)
    try:
        _wait_for_train_state(process, killed / state, log)
        jobs, survivors = _kill_group(process)
    finally:  # a failed wait must not leave the workflow running
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert jobs, "the training job ran in no child process of snakemake"
    assert not survivors, "a job process left Snakemake's process group and survived its kill"
    killed_at = load_checkpoint(killed / state)["step"]
    assert killed_at == STEPS // 10  # the first train state: the paused job stopped right there
    assert not (killed / STAGE_DIR / "model.pt").exists(), "the stage finished before the kill"
    assert not (killed / EVALUATE_DIR).exists()

    results = killed / "results"
    assert _check_complete(results) > 20  # every image, table and checkpoint reads in full
    leftovers = _temporaries(results)

    # Snakemake's lock outlives a SIGKILL; --unlock is the documented first step of a rerun.
    run_snakemake(killed, "--unlock")
    rerun = run_snakemake(killed, "--cores", "2", TARGET)
    train_log = (killed / "logs" / "train_task" / "main" / f"{STAGE_DIR.name}.log").read_text()
    resumed = re.search(rf"resuming from {re.escape(str(state))} at step (\d+)", train_log)
    assert resumed, train_log
    assert int(resumed.group(1)) == killed_at  # from the state the kill left
    assert not (killed / state).exists()
    _assert_same(expected, _snapshot(killed), "resumed")
    assert _temporaries(results) <= leftovers, rerun.stdout
    assert "Nothing to be done" in run_snakemake(killed, "-n", "--cores", "1", TARGET).stdout
