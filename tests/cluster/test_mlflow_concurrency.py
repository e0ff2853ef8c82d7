"""Many parallel Snakemake jobs tracking at once lose no MLflow run, on either tracking store.

The tiny config up to selection is about 30 jobs (4 datasets x (prepare, teachers, scores,
selection); with ``--cores 8`` and one thread per job, up to eight jobs
create, log to and finish their child runs at the same time, against

* an ``mlflow server`` (``MLFLOW_TRACKING_URI=http://127.0.0.1:PORT``), the cluster setup, and
* the default SQLite file ``results/mlflow/mlflow.db`` (serialized by fusionfm's file lock).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ..workflow.conftest import REPO, run_snakemake
from .conftest import MlflowServer, child_runs

DATASETS = ("syn_ivf", "syn_mif", "syn_mef", "syn_mff")
TARGETS = [f"results/selection/{name}.parquet" for name in DATASETS]


def executed_jobs(log: str) -> list[str]:
    """The MLflow run name (``rule/wildcard values``) of every job in a Snakemake log."""
    jobs: list[list[str]] = []
    for line in log.splitlines():
        if match := re.match(r"^(local)?rule (\w+):$", line.strip()):
            jobs.append([match.group(2)])
        elif (match := re.match(r"^\s+wildcards: (.*)$", line)) and jobs:
            jobs[-1] += [item.split("=", 1)[1] for item in match.group(1).split(", ")]
    return ["/".join(job) for job in jobs]


@pytest.mark.slow
@pytest.mark.parametrize("store", ["server", "sqlite"])
def test_parallel_jobs_lose_no_run(store: str, tmp_path: Path, request) -> None:
    shutil.copy(REPO / "tests" / "config" / "tiny.yaml", tmp_path / "config.yaml")
    env = {"MLFLOW_DISABLE_TELEMETRY": "true"}
    if store == "server":
        server: MlflowServer = request.getfixturevalue("mlflow_server")
        env["MLFLOW_TRACKING_URI"] = server.uri
        tracking_uri = server.uri
    else:  # run_snakemake drops MLFLOW_* variables: the default store of the results tree
        tracking_uri = f"sqlite:///{(tmp_path / 'results' / 'mlflow' / 'mlflow.db').as_posix()}"

    result = run_snakemake(
        tmp_path,
        *TARGETS,
        "--cores",
        "8",
        "--set-threads",
        "run_teacher=1",
        "score_pseudolabels=1",
        env=env,
        timeout=900,
    )
    log = result.stdout + result.stderr
    jobs = executed_jobs(log)
    computed = sorted(jobs)
    assert len(computed) >= 20 and len(set(computed)) == len(computed), computed

    parent, children = child_runs(tracking_uri, tmp_path / "results" / "mlflow" / "parent.json")
    names = sorted(run.info.run_name for run in children)
    assert names == computed  # one child per job: none lost, none doubled
    for run in children:
        assert run.info.status == "FINISHED", run.info.run_name
        assert run.data.metrics, f"{run.info.run_name} logged no metric"
        assert run.data.tags["config.sha256"] == parent["config_sha256"]
        rule = run.data.tags["snakemake.rule"]
        assert run.info.run_name.startswith(f"{rule}/{run.data.tags['wc.dataset']}")
        if rule in ("prepare_dataset", "run_teacher"):
            assert run.data.metrics["pairs"] == 4, run.info.run_name
    if store == "sqlite":
        assert not (tmp_path / "mlruns").exists()
    else:
        assert not (tmp_path / "results" / "mlflow" / "mlflow.db").exists()
