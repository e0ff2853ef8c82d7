"""The real workflow submitted through ``profiles/slurm`` to a SLURM cluster on this machine.

One tiny dataset with two teachers, up to its selection (prepare -> 2 teachers -> scores ->
selection: five sbatch jobs), tracked on an ``mlflow server``
as on a cluster. The jobs must really have gone through SLURM (snakemake's submission
messages, their SLURM logs, squeue's record of each job, and the ``slurm.job_id`` of each MLflow
child run), and the result tables must equal those of a local run of the same target.

Needs a running SLURM (``bash .ci/setup_slurm.sh start`` as root, as ``.ci/run`` does) and
skips, with the reason, without one. Local-cluster settings that a real cluster does not need
(squeue for job states, a short first status check, kept SLURM logs) are given here, not in
the profile.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ..workflow.conftest import REPO, run_snakemake
from .conftest import MlflowServer, child_runs

DATASET = "syn_ivf"
TEACHERS = ("average", "max_abs")
TARGET = f"results/selection/{DATASET}.parquet"
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")

# test-only settings for the local cluster (no accounting daemon, quick status polling)
LOCAL_CLUSTER_ARGS = (
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--slurm-keep-successful-logs",
    "--set-threads",  # the two teachers side by side on the two-CPU node
    "run_teacher=1",
)


def write_config(workdir: Path) -> None:
    """tests/config/tiny.yaml reduced to one dataset and two teachers."""
    config = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    config["datasets"] = {DATASET: config["datasets"][DATASET]}
    config["teachers"] = {"builtin": {name: {} for name in TEACHERS}}
    config["mlflow"]["experiment"] = "fusionfm-slurm-test"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def result_tables(workdir: Path) -> dict[str, pd.DataFrame]:
    """Every Parquet table under results/, without timing columns."""
    tables = {}
    for path in sorted((workdir / "results").rglob("*.parquet")):
        table = pd.read_parquet(path)
        tables[path.relative_to(workdir).as_posix()] = table.drop(
            columns=[c for c in ("seconds",) if c in table.columns]
        )
    return tables


def image_digests(workdir: Path) -> dict[str, str]:
    return {
        path.relative_to(workdir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((workdir / "results").rglob("*.png"))
    }


@pytest.mark.slow
@pytest.mark.cluster
def test_slurm_profile_runs_jobs_on_slurm_with_local_results(
    slurm_cluster: None, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    write_config(on_slurm)
    write_config(local)
    # sbatch hands the environment to the jobs: they find this venv's python and snakemake
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

    result = run_snakemake(
        on_slurm,
        TARGET,
        "--workflow-profile",
        str(REPO / "profiles" / "slurm"),
        *LOCAL_CLUSTER_ARGS,
        env={"MLFLOW_TRACKING_URI": mlflow_server.uri, "PATH": path},
        timeout=600,
    )
    log = result.stdout + result.stderr

    # Five jobs were submitted with sbatch (the parent run is made by snakemake itself, onstart).
    submitted = {int(job_id): Path(slurm_log) for job_id, slurm_log in SUBMITTED.findall(log)}
    assert len(submitted) == 5, log
    rules = sorted(p.relative_to(on_slurm / "logs" / "slurm").parts[0] for p in submitted.values())
    assert rules == sorted(
        ["rule_prepare_dataset", "rule_score_pseudolabels", "rule_select_pseudolabels"]
        + ["rule_run_teacher"] * 2
    )
    for job_id, slurm_log in submitted.items():
        assert slurm_log.name == f"{job_id}.log" and slurm_log.is_file()
        # the job's own snakemake ran the rule on the node, through the jobstep executor
        text = slurm_log.read_text()
        assert f"rule {slurm_log.parts[-3].removeprefix('rule_')}:" in text
        assert "--executor slurm-jobstep" in text

    # SLURM itself records every one of them as COMPLETED (MinJobAge keeps finished jobs).
    states = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(map(str, submitted)), "-o", "%i %T"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert dict(zip(states[::2], states[1::2], strict=True)) == {
        str(job_id): "COMPLETED" for job_id in submitted
    }

    # Each job's MLflow child run (on the server) ran inside its SLURM job.
    _, children = child_runs(mlflow_server.uri, on_slurm / "results" / "mlflow" / "parent.json")
    assert all(run.info.status == "FINISHED" for run in children)
    assert sorted(int(run.data.tags["slurm.job_id"]) for run in children) == sorted(submitted)
    assert not (on_slurm / "results" / "mlflow" / "mlflow.db").exists()

    # The same target run locally gives the same tables, selection report and images.
    run_snakemake(local, "--cores", "2", TARGET, env={"FUSIONFM_TRACKING": "0"})
    slurm_tables, local_tables = result_tables(on_slurm), result_tables(local)
    assert sorted(slurm_tables) == sorted(local_tables)
    assert f"results/scores/{DATASET}.parquet" in slurm_tables and TARGET in slurm_tables
    for name, table in slurm_tables.items():
        pd.testing.assert_frame_equal(table, local_tables[name], obj=name)
    selection_report = f"results/selection/{DATASET}.json"
    assert json.loads((on_slurm / selection_report).read_text()) == json.loads(
        (local / selection_report).read_text()
    )
    assert image_digests(on_slurm) == image_digests(local)
