"""fusionfm.tracking against an ``mlflow server`` (``MLFLOW_TRACKING_URI=http://127.0.0.1:PORT``).

The cluster setup: no SQLite file and no file lock on the job's side, artifacts uploaded through
the server. Each test uses its own experiment on the session's server.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from fusionfm import tracking

from .conftest import MlflowServer

PARENT = "results/mlflow/parent.json"


@pytest.fixture
def on_server(
    mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> MlflowServer:
    """tmp_path as the working directory, tracking on the session's server."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    for name in ("MLFLOW_RUN_ID", "FUSIONFM_TRACKING"):
        monkeypatch.delenv(name, raising=False)
    return mlflow_server


def test_parent_child_runs_and_logging_on_a_server(on_server: MlflowServer, tmp_path: Path):
    from mlflow import MlflowClient

    experiment = f"server-{uuid.uuid4().hex[:8]}"
    config = {"train": {"lr": 0.002}, "mlflow": {"experiment": experiment}}
    info = tracking.ensure_parent_run(PARENT, experiment, config=config)
    assert info["tracking_uri"] == on_server.uri
    assert json.loads((tmp_path / PARENT).read_text()) == info
    # get-or-create: a second call (another job) reuses the parent
    assert tracking.ensure_parent_run(PARENT, experiment, config=config) == info

    plot = tmp_path / "curve.txt"
    plot.write_text("0 1\n1 0\n")
    with tracking.stage_run(
        PARENT, "train_task", {"variant": "main", "stage": "00_ivf"}, params={"lr": 0.002}
    ) as run:
        for step in range(5):
            run.log_metrics({"train/loss": 1.0 / (step + 1)}, step=step)
        run.log_dict({"psnr": 31.5}, "eval/summary.json")
        run.log_artifact(plot, "plots")
        run.set_tags({"upstream.note": "x"})
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.stage_run(PARENT, "evaluate_student", {"variant": "main"}):
            raise RuntimeError("boom")
    tracking.log_to_parent(PARENT, {"final/composite": 0.75}, experiment=experiment)

    client = MlflowClient(on_server.uri)
    runs = client.search_runs([info["experiment_id"]], max_results=100)
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {
        f"parent/{tmp_path.name}",
        "train_task/main/00_ivf",
        "evaluate_student/main",
    }
    parent = by_name[f"parent/{tmp_path.name}"]
    assert parent.info.run_id == info["run_id"]
    assert parent.data.metrics == {"final/composite": 0.75}
    assert parent.data.tags["config.sha256"] == info["config_sha256"]
    stored_config = json.loads(
        Path(
            client.download_artifacts(parent.info.run_id, "config.json", str(tmp_path))
        ).read_text()
    )
    assert stored_config == config

    child = by_name["train_task/main/00_ivf"]
    assert child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == info["run_id"]
    assert child.data.tags["slurm.job_id"] == "77"
    assert child.data.tags["wc.stage"] == "00_ivf" and child.data.tags["upstream.note"] == "x"
    assert child.data.params == {"lr": "0.002"}
    history = client.get_metric_history(child.info.run_id, "train/loss")
    assert sorted((m.step, m.value) for m in history) == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert child.info.artifact_uri.startswith("mlflow-artifacts:")
    assert {a.path for a in client.list_artifacts(child.info.run_id)} == {"eval", "plots"}
    summary = client.download_artifacts(child.info.run_id, "eval/summary.json", str(tmp_path))
    assert json.loads(Path(summary).read_text()) == {"psnr": 31.5}
    # the artifacts went through the server into its --artifacts-destination
    assert list((on_server.root / "artifacts").rglob("curve.txt"))

    assert by_name["evaluate_student/main"].info.status == "FAILED"
    # nothing local: no SQLite file, no lock file, no ./mlruns
    assert sorted(p.name for p in (tmp_path / "results" / "mlflow").iterdir()) == [
        "parent.json",
        "parent.json.lock",
    ]
    assert not (tmp_path / "mlruns").exists()
