"""The real workflow on generated data, in a scratch results tree."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from fusionfm.io import MANIFEST_SCHEMA

from .conftest import run_snakemake

DATASETS = ("syn_ivf", "syn_mif", "syn_mef", "syn_mff")


@pytest.mark.slow
def test_all_builds_every_dataset_tracks_it_and_reruns_only_what_changed(workdir):
    run_snakemake(workdir, "--cores", "2", "all")
    for name in DATASETS:
        manifest = pd.read_parquet(workdir / "results" / "datasets" / name / "manifest.parquet")
        assert list(manifest.columns) == MANIFEST_SCHEMA.names
        assert len(manifest) == 4 and set(manifest["split"]) == {"train", "test"}
        for column in ("path_a", "path_b"):
            for path in manifest[column]:
                assert (workdir / "results" / "datasets" / name / path).is_file()
        assert manifest["path_gt"].notna().all() == (name in ("syn_mef", "syn_mff"))
        assert (workdir / "logs" / "prepare_dataset" / f"{name}.log").is_file()
        assert (workdir / "benchmarks" / "prepare_dataset" / f"{name}.tsv").is_file()

    parent = json.loads((workdir / "results" / "mlflow" / "parent.json").read_text())
    import mlflow

    client = mlflow.MlflowClient(parent["tracking_uri"])
    runs = client.search_runs([parent["experiment_id"]])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent["run_id"]]
    assert sorted(r.data.tags["wc.dataset"] for r in children) == sorted(DATASETS)
    assert all(r.info.status == "FINISHED" and r.data.metrics["pairs"] == 4 for r in children)

    assert "Nothing to be done" in run_snakemake(workdir, "-n", "--cores", "1", "all").stdout

    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["datasets"]["syn_mef"]["synthetic"]["seed"] = 99
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    plan = run_snakemake(workdir, "-n", "--cores", "1", "all").stdout
    assert "dataset=syn_mef" in plan
    assert not any(f"dataset={name}" in plan for name in DATASETS if name != "syn_mef")
