"""The DAG itself: dry runs, lint, config validation."""

from __future__ import annotations

import yaml

from .conftest import REPO, run_snakemake


def test_dry_run_plans_every_dataset(workdir):
    result = run_snakemake(workdir, "-n", "--cores", "1", "all")
    for name in ("syn_ivf", "syn_mif", "syn_mef", "syn_mff"):
        assert f"dataset={name}" in result.stdout
    assert "rule train_task:" in result.stdout and "rule report:" in result.stdout


def test_a_changed_mlflow_setting_still_plans_the_whole_dag(workdir):
    # Snakemake drops the jobs downstream of an ancient() input whose producer reruns; the
    # parent run is therefore made by an onstart handler, not by a job every rule depends on.
    first = run_snakemake(workdir, "-n", "--cores", "1", "all").stdout
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["mlflow"]["experiment"] = "renamed"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    second = run_snakemake(workdir, "-n", "--cores", "1", "all").stdout
    assert second.count("rule ") == first.count("rule ") > 50


def test_lint_is_clean(workdir):
    result = run_snakemake(workdir, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for rule" not in result.stdout + result.stderr


def test_snakefmt_is_clean():
    import subprocess
    import sys
    from pathlib import Path

    snakefmt = str(Path(sys.executable).with_name("snakefmt"))
    files = [str(REPO / "Snakefile"), *map(str, sorted((REPO / "workflow" / "rules").glob("*.smk")))]
    result = subprocess.run([snakefmt, "--check", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_config_key_is_named(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["datasets"]["syn_ivf"]["synthetc"] = {"pairs": 2}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", "--cores", "1", "all", check=False)
    assert result.returncode != 0
    assert "synthetc" in result.stdout + result.stderr and "Additional properties are not allowed" in result.stdout + result.stderr


def test_wrong_type_is_named(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["datasets"]["syn_ivf"]["synthetic"]["pairs"] = "many"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", "--cores", "1", "all", check=False)
    assert result.returncode != 0
    assert "'many' is not of type 'integer'" in result.stdout + result.stderr


def test_unknown_task_is_rejected(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["datasets"]["syn_ivf"]["task"] = "xyz"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", "--cores", "1", "all", check=False)
    assert result.returncode != 0
    assert "'xyz' is not one of ['ivf', 'mif', 'mef', 'mff']" in result.stdout + result.stderr
