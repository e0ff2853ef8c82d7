"""Tests of fusionfm.tracking: parent/child runs, failure status, no-op mode, concurrency.

Every test works in ``tmp_path`` (as the working tree) with ``MLFLOW_TRACKING_URI`` pointing at
a SQLite file there, so the repository's ``results/`` is never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import fusionfm
from fusionfm import tracking

PARENT = "results/mlflow/parent.json"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory, with a fresh SQLite tracking URI inside it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path.as_posix()}/db/mlflow.db")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("FUSIONFM_TRACKING", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    return tmp_path


def _client():
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])


def _all_runs(client, experiment_id: str):
    return client.search_runs([experiment_id], max_results=1000)


def test_tracking_uri_default_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking.tracking_uri(tmp_path)
    assert uri == f"sqlite:///{(tmp_path / tracking.DEFAULT_TRACKING_URI_PATH).as_posix()}"
    assert uri.startswith("sqlite:////")  # absolute path
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking.tracking_uri(tmp_path) == "http://mlflow.example:5000"


def test_stage_run_creates_parent_and_child_then_reuses_parent(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("MLFLOW_RUN_ID", "0" * 32)  # must be ignored, not resumed
    assert not (workdir / PARENT).exists()
    wildcards = {"dataset": "syn_ivf", "task": "00"}
    with tracking.stage_run(
        PARENT,
        "train_task",
        wildcards,
        params={"lr": 1e-4, "long": "x" * 7000},
        experiment="exp",
        tags={"ckpt": "results/train/syn_ivf/task00/model.pt"},
    ) as run:
        assert isinstance(run, tracking.Tracker) and run.run_id
        for step in range(3):
            run.log_metrics({"train/loss": 1.0 / (step + 1), "bad": float("nan")}, step=step)
        run.log_metrics({"inf": float("inf")})  # only non-finite values: nothing logged
        run.set_tags({"extra": 1})
        run.log_dict({"psnr": 30.5}, "eval/metrics.json")
    first_child = run.run_id

    parent_text = (workdir / PARENT).read_text()
    parent = json.loads(parent_text)
    assert set(parent) == {
        "run_id",
        "experiment_id",
        "experiment",
        "tracking_uri",
        "git_commit",
        "config_sha256",
        "created",
    }
    assert parent["experiment"] == "exp" and parent["config_sha256"] is None
    assert parent["tracking_uri"] == os.environ["MLFLOW_TRACKING_URI"]

    client = _client()
    child = client.get_run(first_child)
    assert child.info.status == "FINISHED"
    assert child.info.run_name == "train_task/syn_ivf/00"
    assert child.info.experiment_id == parent["experiment_id"]
    tags = child.data.tags
    assert tags["mlflow.parentRunId"] == parent["run_id"]
    assert tags["stage"] == tags["snakemake.rule"] == "train_task"
    assert tags["wc.dataset"] == "syn_ivf" and tags["wc.task"] == "00"
    assert tags["slurm.job_id"] == "4242"
    assert tags["ckpt"].endswith("model.pt") and tags["extra"] == "1"
    assert child.data.params["lr"] == "0.0001"
    assert len(child.data.params["long"]) == 6000  # truncated to MLflow's limit
    history = client.get_metric_history(first_child, "train/loss")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert "bad" not in child.data.metrics and "inf" not in child.data.metrics
    artifacts = [a.path for a in client.list_artifacts(first_child, "eval")]
    assert artifacts == ["eval/metrics.json"]
    # artifacts live beside parent.json, never in ./mlruns
    art_file = workdir / "results/mlflow/artifacts" / first_child / "artifacts/eval/metrics.json"
    assert json.loads(art_file.read_text()) == {"psnr": 30.5}
    assert not (workdir / "mlruns").exists()

    with tracking.stage_run(PARENT, "evaluate_task", wildcards, experiment="exp") as run2:
        run2.log_metrics({"eval/task00/psnr": 31.0}, step=0)
    assert (workdir / PARENT).read_text() == parent_text  # same parent, file untouched
    assert client.get_run(run2.run_id).data.tags["mlflow.parentRunId"] == parent["run_id"]

    tracking.log_to_parent(PARENT, {"avg_psnr": 30.75, "forgetting": float("nan")}, "exp")
    parent_run = client.get_run(parent["run_id"])
    assert parent_run.data.metrics == {"avg_psnr": 30.75}
    assert "mlflow.parentRunId" not in parent_run.data.tags
    runs = _all_runs(client, parent["experiment_id"])
    assert sorted(r.info.run_id for r in runs) == sorted(
        [parent["run_id"], first_child, run2.run_id]
    )
    assert (workdir / PARENT).read_text() == parent_text


def test_ensure_parent_run_records_config(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = {"split": {"seed": 0, "test_fraction": 0.25}, "mlflow": {"experiment": "exp"}}
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    parent = tracking.ensure_parent_run(PARENT, "exp", config=config)
    assert parent["config_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert json.loads((workdir / PARENT).read_text()) == parent
    client = _client()
    stored = workdir / "results/mlflow/artifacts" / parent["run_id"] / "artifacts/config.json"
    assert json.loads(stored.read_text()) == config
    assert client.get_run(parent["run_id"]).data.tags["config.sha256"] == parent["config_sha256"]

    with tracking.stage_run(PARENT, "summarize", {}, experiment="exp") as run:
        pass
    child = client.get_run(run.run_id)
    assert child.info.run_name == "summarize"
    assert child.data.tags["config.sha256"] == parent["config_sha256"]

    with caplog.at_level("WARNING", logger="fusionfm.tracking"):  # get, not re-create
        again = tracking.ensure_parent_run(PARENT, "exp", config={**config, "x": 1})
    assert again == parent
    assert "config changed" in caplog.text


def test_exception_marks_child_failed_and_reraises(workdir: Path) -> None:
    # Snakemake's own wildcards object (a Namedlist: items() but no values())
    iocontainers = pytest.importorskip("snakemake.iocontainers")
    wildcards = iocontainers.Wildcards(fromdict={"dataset": "d", "task": "01"})
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.stage_run(PARENT, "train_task", wildcards) as run:
            run.log_metrics({"loss": 1.0}, step=0)
            raise RuntimeError("boom")
    client = _client()
    failed = client.get_run(run.run_id)
    assert failed.info.status == "FAILED"
    assert failed.info.run_name == "train_task/d/01"
    assert failed.data.tags["wc.task"] == "01"
    assert failed.data.metrics == {"loss": 1.0}
    assert failed.info.end_time is not None


def test_parent_recreated_when_run_missing_from_store(workdir: Path) -> None:
    first = tracking.ensure_parent_run(PARENT, "fusionfm")
    _client().delete_run(first["run_id"])
    second = tracking.ensure_parent_run(PARENT, "fusionfm")
    assert second["run_id"] != first["run_id"]
    assert json.loads((workdir / PARENT).read_text())["run_id"] == second["run_id"]


@pytest.mark.parametrize("how", ["argument", "env"])
def test_disabled_tracking_touches_nothing(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    enabled = how != "argument"
    if how == "env":
        monkeypatch.setenv("FUSIONFM_TRACKING", "0")
    before = sorted(workdir.rglob("*"))
    with tracking.stage_run(
        PARENT, "train_task", {"task": "00"}, {"lr": 1}, enabled=enabled
    ) as run:
        assert isinstance(run, tracking.NoopTracker) and run.run_id is None
        run.log_params({"a": 1})
        run.log_metrics({"loss": 1.0}, step=1)
        run.log_artifact(workdir / "does-not-exist.png")
        run.log_dict({"a": 1}, "x.json")
        run.set_tags({"t": "v"})
    assert tracking.ensure_parent_run(PARENT, "fusionfm", enabled=enabled) == {}
    tracking.log_to_parent(PARENT, {"avg": 1.0}, "fusionfm", enabled=enabled)
    with pytest.raises(ValueError):  # exceptions still propagate
        with tracking.stage_run(PARENT, "train_task", {}, enabled=enabled):
            raise ValueError
    assert sorted(workdir.rglob("*")) == before == []


def test_lock_only_for_sqlite_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "sub" / "mlflow.db"
    assert tracking._lock_path_for_uri(f"sqlite:///{db.as_posix()}") == Path(f"{db}.lock")
    assert tracking._lock_path_for_uri("sqlite:///rel/m.db") == tmp_path / "rel/m.db.lock"
    for uri in (
        "http://127.0.0.1:5000",
        "https://mlflow.example",
        "sqlite://",
        "sqlite:///:memory:",
    ):
        assert tracking._lock_path_for_uri(uri) is None
        with tracking._store_lock(uri):
            pass
    assert list(tmp_path.rglob("*")) == []  # no lock file for a server (or in-memory) URI
    with tracking._store_lock(f"sqlite:///{db.as_posix()}"):
        with tracking._store_lock(f"sqlite:///{db.as_posix()}"):  # reentrant, no deadlock
            assert db.with_name("mlflow.db.lock").is_file()


def test_transient_error_detection_and_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from mlflow.exceptions import MlflowException

    assert tracking._is_transient(sqlite3.OperationalError("database is locked"))
    assert tracking._is_transient(MlflowException("(sqlite3.OperationalError) database is busy"))
    wrapped = MlflowException("commit failed")
    wrapped.__cause__ = sqlite3.OperationalError("database is locked")
    assert tracking._is_transient(wrapped)
    assert not tracking._is_transient(MlflowException("Run 'abc' not found"))
    assert not tracking._is_transient(ValueError("locked"))

    monkeypatch.setattr(tracking, "_RETRY_BASE_S", 0.0)
    store = tracking._Store("http://127.0.0.1:9")  # never contacted: the call is faked
    calls = []

    def flaky(client: object) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "ok"

    monkeypatch.setattr(store, "_get_client", lambda: None)
    assert store.call(flaky) == "ok" and len(calls) == 3
    with pytest.raises(MlflowException):
        store.call(lambda client: (_ for _ in ()).throw(MlflowException("not transient")))


_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    import mlflow.store.tracking.sqlalchemy_store  # the slow imports, before the barrier
    from fusionfm.tracking import stage_run

    idx = int(sys.argv[1])
    Path("ready", str(idx)).touch()
    deadline = time.monotonic() + 600  # a hang guard only
    while not Path("go").exists():
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.005)
    wildcards = {"dataset": f"ds{idx}", "task": "00"}
    with stage_run("results/mlflow/parent.json", "train_task", wildcards,
                   params={"idx": idx, "lr": 0.001}, experiment="race") as run:
        for step in range(20):
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": idx + step / 20}, step=step)
        run.set_tags({"done": "yes"})
    print(run.run_id)
    """
)


def test_concurrent_stage_runs_share_one_parent(workdir: Path) -> None:
    """8 processes race on a fresh SQLite DB and a missing parent.json."""
    n = 8
    (workdir / "ready").mkdir()
    src = str(Path(fusionfm.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    env.pop("PYTEST_CURRENT_TEST", None)  # behave like a real Snakemake job
    assert not (workdir / PARENT).exists() and not (workdir / "db").exists()

    hang_guard = time.monotonic() + 600  # the workers only import mlflow and touch a file
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(i)],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    try:
        while len(list((workdir / "ready").iterdir())) < n:
            assert time.monotonic() < hang_guard, "workers hung before getting ready"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.02)
        (workdir / "go").touch()
        outputs = [p.communicate(timeout=600) for p in procs]  # a hang guard only
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err, err

    parent = json.loads((workdir / PARENT).read_text())
    child_ids = {out.strip() for out, _ in outputs}
    assert len(child_ids) == n

    client = _client()
    experiment = client.get_experiment_by_name("race")
    assert experiment.experiment_id == parent["experiment_id"]
    runs = _all_runs(client, experiment.experiment_id)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert [r.info.run_id for r in parents] == [parent["run_id"]]
    assert {r.info.run_id for r in children} == child_ids
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent["run_id"]
        assert run.info.status == "FINISHED"
        assert run.data.tags["done"] == "yes"
        idx = int(run.data.params["idx"])
        assert run.info.run_name == f"train_task/ds{idx}/00"
        for key in ("loss", "acc"):
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
            assert steps == list(range(20)), (key, steps)
        assert run.data.metrics["acc"] == pytest.approx(idx + 19 / 20)
    assert not (workdir / "mlruns").exists()


def test_deferred_stage_run_imports_no_mlflow_and_writes_one_record(workdir: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from fusionfm.tracking import stage_run

        with stage_run("results/mlflow/parent.json", "run_teacher", {"dataset": "d"},
                       params={"p": 1}, defer=True) as run:
            run.log_metrics({"loss": 0.5}, step=3)
        assert "mlflow" not in sys.modules, "a deferred run imported mlflow"
        """
    )
    src = str(Path(fusionfm.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    records = list(tracking.journal_dir(PARENT).glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["run_name"] == "run_teacher/d" and record["status"] == "FINISHED"
    assert record["metrics"][0][0::3] == ["loss", 3]  # name and step
    assert not (workdir / "db").exists()  # the store was not touched


def test_sync_replays_deferred_runs_as_children(workdir: Path) -> None:
    parent = tracking.ensure_parent_run(PARENT, "exp", config={"a": 1})
    plot = workdir / "plot.png"
    plot.write_bytes(b"png bytes")
    with tracking.stage_run(
        PARENT,
        "train_task",
        {"variant": "main", "stage": "00_mef"},
        params={"lr": 0.01, "long": "x" * 7000},
        experiment="exp",
        defer=True,
    ) as run:
        assert isinstance(run, tracking.JournalTracker) and run.run_id is None
        for step in (10, 20):
            run.log_metrics({"train/loss": 1.0 / step, "bad": float("nan")}, step=step)
        run.set_tags({"extra": 2})
        run.log_dict({"psnr": 30.5}, "eval/metrics.json")
        run.log_artifact(plot)
    plot.write_bytes(b"changed later")  # the run keeps the file as it was logged
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.stage_run(PARENT, "evaluate_student", {}, experiment="exp", defer=True):
            raise RuntimeError("boom")
    tracking.log_to_parent(PARENT, {"forgetting": -0.05}, "exp", defer=True)
    records = sorted(tracking.journal_dir(PARENT).glob("*.json"))
    first = json.loads(records[0].read_text())

    client = _client()
    assert [r.info.run_id for r in _all_runs(client, parent["experiment_id"])] == [
        parent["run_id"]
    ]  # nothing in MLflow before the sync
    assert tracking.sync_journal(PARENT, "exp") == 3
    assert list(tracking.journal_dir(PARENT).iterdir()) == [
        tracking.journal_dir(PARENT) / ".sync.lock"
    ]
    assert tracking.sync_journal(PARENT, "exp") == 0  # replayed once only

    runs = {r.info.run_name: r for r in _all_runs(client, parent["experiment_id"])}
    train = client.get_run(runs["train_task/main/00_mef"].info.run_id)
    assert train.info.status == "FINISHED"
    assert (train.info.start_time, train.info.end_time) == (first["start_time"], first["end_time"])
    tags = train.data.tags
    assert tags["mlflow.parentRunId"] == parent["run_id"]
    assert tags["config.sha256"] == parent["config_sha256"]
    assert tags["wc.stage"] == "00_mef" and tags["extra"] == "2"
    assert train.data.params["lr"] == "0.01" and len(train.data.params["long"]) == 6000
    history = client.get_metric_history(train.info.run_id, "train/loss")
    assert sorted((m.step, m.value) for m in history) == [(10, 0.1), (20, 0.05)]
    assert "bad" not in train.data.metrics
    artifacts = workdir / "results/mlflow/artifacts" / train.info.run_id / "artifacts"
    assert json.loads((artifacts / "eval/metrics.json").read_text()) == {"psnr": 30.5}
    assert (artifacts / "plot.png").read_bytes() == b"png bytes"
    failed = runs["evaluate_student"]
    assert failed.info.status == "FAILED"
    assert client.get_run(parent["run_id"]).data.metrics == {"forgetting": -0.05}


def test_sync_keeps_a_record_it_cannot_replay(workdir: Path) -> None:
    with tracking.stage_run(PARENT, "prepare_dataset", {"dataset": "d"}, defer=True) as run:
        run.log_metrics({"pairs": 24})
    journal = tracking.journal_dir(PARENT)
    broken = journal / "00000000000000000000-1-broken.json"
    broken.write_text('{"kind": "run", "run_name": "x"}')  # no tags, times, status
    assert tracking.sync_journal(PARENT) == 1
    assert sorted(p.name for p in journal.glob("*.json")) == [broken.name]
    parent = json.loads((workdir / PARENT).read_text())
    names = [r.info.run_name for r in _all_runs(_client(), parent["experiment_id"])]
    assert "prepare_dataset/d" in names


def test_mlflow_sync_command_logs_pending_records(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fusionfm.cli import main

    parent = tracking.ensure_parent_run(PARENT, "exp")
    with tracking.stage_run(PARENT, "run_teacher", {"dataset": "d"}, defer=True) as run:
        run.log_metrics({"pairs": 3})
    assert main(["mlflow-sync"]) == 0
    assert "logged 1 job run(s)" in capsys.readouterr().err
    runs = _all_runs(_client(), parent["experiment_id"])  # in parent.json's experiment
    assert sorted(r.info.run_name for r in runs) == ["parent/" + workdir.name, "run_teacher/d"]
    assert main(["mlflow-sync"]) == 0
    assert "no new job runs" in capsys.readouterr().err
