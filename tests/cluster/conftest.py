"""Fixtures for the cluster tests: a local SLURM (if set up) and a scratch ``mlflow server``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SLURM_TOOLS = ("sinfo", "sbatch", "squeue", "srun")
SETUP_HINT = "as root: bash .ci/setup_slurm.sh start"
SERVER_START_TIMEOUT_S = 180


def _slurm_verdict() -> str | None:
    """The verdict ``.ci/setup_slurm.sh start`` left ("up" / "unavailable: ..."), if any."""
    path = os.environ.get("FUSIONFM_SLURM_STATUS")
    if not path or not Path(path).is_file():
        return None
    return Path(path).read_text(encoding="utf-8").strip() or None


def slurm_unavailable_reason() -> str | None:
    """Why the local SLURM cannot run the test's jobs, or ``None`` when it can."""
    verdict = _slurm_verdict()
    if verdict is not None and verdict != "up":
        return f"local SLURM not set up: {verdict}"
    missing = [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]
    if missing:
        return (
            f"SLURM commands not found ({', '.join(missing)}); set up a local cluster {SETUP_HINT}"
        )
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return 'snakemake-executor-plugin-slurm is not installed (pip install -e ".[cluster]")'
    if verdict == "up":
        return None  # the setup said so: a node that is not ready now is a failure, not a skip
    try:
        states = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as err:
        return f"sinfo failed ({err}); set up a local cluster {SETUP_HINT}"
    ready = {"idle", "mixed", "allocated"}
    if states.returncode != 0 or not ready & set(states.stdout.split()):
        detail = (states.stdout + states.stderr).strip() or "no nodes"
        return f"no SLURM node is ready (sinfo: {detail}); set up a local cluster {SETUP_HINT}"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip (with the reason) unless a SLURM cluster answers on this machine."""
    reason = slurm_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server``: its URL and its folder (database, artifacts, log)."""

    uri: str
    root: Path


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's process group (the CLI, its uvicorn and job-runner children)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    try:  # children may outlive the CLI; the group still has the CLI's id
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """An ``mlflow server`` on 127.0.0.1 with a SQLite backend, stopped after the session."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    mlflow_cli = str(Path(sys.executable).with_name("mlflow"))
    command = [
        mlflow_cli,
        "server",
        "--backend-store-uri",
        f"sqlite:///{(root / 'mlflow.db').as_posix()}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        command,
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so teardown stops all its workers
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"mlflow server exited ({process.returncode}):\n"
                    + (root / "server.log").read_text()
                )
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"mlflow server did not answer within {SERVER_START_TIMEOUT_S} s:\n"
                    + (root / "server.log").read_text()
                )
            time.sleep(0.5)
        yield MlflowServer(uri=uri, root=root)
    finally:
        _stop(process)
        log.close()


def child_runs(tracking_uri: str, parent_json: Path) -> tuple[dict, list]:
    """``parent.json``'s content and every run of its experiment that names it as parent.

    Also asserts that the experiment holds no other top-level run than that parent.
    """
    import json

    from mlflow import MlflowClient

    parent = json.loads(parent_json.read_text())
    assert parent["tracking_uri"] == tracking_uri
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([parent["experiment_id"]], max_results=5000)
    top_level = [r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert top_level == [parent["run_id"]], top_level
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent["run_id"]]
    assert len(children) == len(runs) - 1
    return parent, children
