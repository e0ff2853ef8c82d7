"""The real workflow on generated data, in a scratch results tree."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml

from fusionfm.io import MANIFEST_SCHEMA, SCORES_SCHEMA, read_table

from .conftest import run_snakemake

DATASETS = ("syn_ivf", "syn_mif", "syn_mef", "syn_mff")


STAGES = ("00_mef", "01_ivf", "02_mif", "03_mff")  # the default train.task_order
VARIANTS = (
    "main",
    "naive",
    "ewc_only",
    "replay_only",
    "joint",
    "no_refiner",
    "no_selection",
    "no_gradient_loss",
)


def _planned_jobs(plan: str) -> set[tuple[str, str]]:
    """(rule, dataset or training stage, "" for a job without wildcards) of every job a dry
    run plans, except ``all``."""
    jobs: list[list[str]] = []
    for line in plan.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):", line.strip()):
            jobs.append([match.group(1), ""])
        elif (match := re.search(r"wildcards: (.*)$", line)) and jobs:
            values = dict(item.split("=", 1) for item in match.group(1).split(", "))
            jobs[-1][1] = values.get("dataset") or values.get("stage") or values.get("variant", "")
    return {(rule, name) for rule, name in jobs if rule != "all"}


def _edit_config(workdir, edit) -> None:
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    edit(config)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.slow
def test_all_runs_through_refinement_tracks_every_job_and_reruns_only_what_changed(workdir):
    run_snakemake(workdir, "--cores", "2", "all")
    results = workdir / "results"
    for name in DATASETS:
        manifest = pd.read_parquet(results / "datasets" / name / "manifest.parquet")
        assert list(manifest.columns) == MANIFEST_SCHEMA.names
        assert len(manifest) == 4 and set(manifest["split"]) == {"train", "test"}
        for column in ("path_a", "path_b"):
            assert all((results / "datasets" / name / p).is_file() for p in manifest[column])
        assert manifest["path_gt"].notna().all() == (name in ("syn_mef", "syn_mff"))

        scores = read_table(results / "scores" / f"{name}.parquet", SCORES_SCHEMA)
        teachers = set(scores.loc[scores["role"] == "teacher", "candidate"])
        assert len(teachers) >= 4 and set(scores["pair"]) == set(manifest["pair"])
        assert ("PSNR_gt" in set(scores["metric"])) == (name in ("syn_mef", "syn_mff"))

        selection = pd.read_parquet(results / "selection" / f"{name}.parquet")
        assert (
            set(selection["pair"]) == set(manifest["pair"])
            and selection["reason"].str.len().min() > 0
        )
        report = json.loads((results / "selection" / f"{name}.json").read_text())
        if name in ("syn_mef", "syn_mff"):
            truth = report["ground_truth"]
            assert -1 <= truth["spearman_composite_psnr_gt"] <= 1
            assert truth["selected_mean_psnr_gt"] >= truth["best_teacher_mean_psnr_gt"]

        refine = pd.read_parquet(results / "refine" / f"{name}.parquet")
        refine_report = json.loads((results / "refine" / f"{name}.json").read_text())
        assert refine_report["pairs"] == len(refine)
        if name in ("syn_mef", "syn_mff"):
            truth = refine_report["ground_truth"]
            assert truth["refined_mean_psnr_gt"] >= truth["selected_mean_psnr_gt"]
        assert (refine["composite_after"] >= refine["composite_before"] - 1e-12).all()
        changed = refine["status"] == "refined"
        assert (
            refine.loc[changed, "composite_after"] > refine.loc[changed, "composite_before"]
        ).all()
        labels = sorted(p.stem for p in (results / "refine" / name / "images").glob("*.png"))
        assert labels == sorted(refine["pair"])
        for rule in (
            "prepare_dataset",
            "score_pseudolabels",
            "select_pseudolabels",
            "refine_labels",
        ):
            assert (workdir / "logs" / rule / f"{name}.log").is_file()
        for rule in ("prepare_dataset", "score_pseudolabels", "refine_labels"):
            assert (workdir / "benchmarks" / rule / f"{name}.tsv").is_file()

    parent = json.loads((results / "mlflow" / "parent.json").read_text())
    import mlflow

    client = mlflow.MlflowClient(parent["tracking_uri"])
    runs = client.search_runs([parent["experiment_id"]], max_results=1000)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent["run_id"]]
    assert all(r.info.status == "FINISHED" for r in children)
    by_rule = {}
    for run in children:
        by_rule.setdefault(run.data.tags["snakemake.rule"], []).append(run)
    assert sorted(r.data.tags["wc.dataset"] for r in by_rule["prepare_dataset"]) == sorted(DATASETS)
    assert len(by_rule["refine_labels"]) == 4 and len(by_rule["select_pseudolabels"]) == 4
    assert all("acceptance_rate" in r.data.metrics for r in by_rule["refine_labels"])
    # the jobs' deferred records were all logged when the workflow ended, curves step by step
    assert not list((results / "mlflow" / "journal").glob("*.json"))
    main_first = next(
        r for r in by_rule["train_task"] if r.info.run_name == f"train_task/main/{STAGES[0]}"
    )
    curve = client.get_metric_history(main_first.info.run_id, "train/loss")
    assert len({m.step for m in curve}) > 1

    assert "Nothing to be done" in run_snakemake(workdir, "-n", "--cores", "1", "all").stdout

    for stage in STAGES:
        assert (results / "train" / "main" / stage / "model.pt").is_file()
    summary = pd.read_parquet(results / "evaluate" / "main" / "summary.parquet")
    assert sorted(summary["task"]) == ["ivf", "mef", "mff", "mif"]
    assert summary["student_composite"].notna().all()
    forgetting = pd.read_parquet(results / "evaluate" / "main" / "forgetting.parquet")
    assert forgetting.shape[0] == len(STAGES)
    assert (results / "evaluate" / "main" / "forgetting.png").stat().st_size > 1000

    # `all` also trains and evaluates every ablation and writes the report.
    ablations = pd.read_parquet(results / "evaluate" / "ablations.parquet")
    assert list(ablations["variant"]) == list(VARIANTS)
    assert ablations["mean_composite"].notna().all()
    sequential = ablations["schedule"] == "sequential"
    assert ablations.loc[sequential, "average_forgetting"].notna().all()
    assert ablations.loc[~sequential, "average_forgetting"].isna().all()
    assert (results / "train" / "joint" / "00_joint" / "model.pt").is_file()
    for dataset in DATASETS:
        selected = sorted(p.name for p in (results / "labels" / dataset / "selected").glob("*.png"))
        chosen = pd.read_parquet(results / "selection" / f"{dataset}.parquet")
        chosen = chosen[chosen["status"] == "selected"]
        assert selected == sorted(f"{pair}.png" for pair in chosen["pair"])
        assert len(list((results / "labels" / dataset / "random").glob("*.png"))) == 4
    page = (results / "report" / "index.html").read_text()
    assert page.count("<img") >= 4 * 3 + 3 and "no_selection" in page and "data:image/png" in page
    assert "Nothing to be done" in run_snakemake(workdir, "-n", "--cores", "1", "ablations").stdout

    # Rewriting the config with its keys sorted (datasets reordered, no value changed) reruns nothing.
    _edit_config(workdir, lambda c: None)
    assert "Nothing to be done" in run_snakemake(workdir, "-n", "--cores", "1", "all").stdout

    # A refiner parameter reruns refinement and the variants trained on refined labels, nothing
    # before it and not the no-refiner / no-selection variants.
    _edit_config(workdir, lambda c: c.setdefault("refiner", {}).update(tolerance=0.07))
    plan = _planned_jobs(run_snakemake(workdir, "-n", "--cores", "1", "all").stdout)
    refined = ("main", "naive", "ewc_only", "replay_only", "joint", "no_gradient_loss")
    assert plan == {("refine_labels", name) for name in DATASETS} | {
        ("train_task", stage) for stage in (*STAGES, "00_joint")
    } | {("evaluate_student", v) for v in refined} | {("compare_ablations", ""), ("report", "")}

    # A training parameter reruns only training.
    _edit_config(workdir, lambda c: c["train"].update(lr=0.001))
    plan = _planned_jobs(run_snakemake(workdir, "-n", "--cores", "1", "all").stdout)
    assert {rule for rule, _ in plan} == {
        "refine_labels",
        "train_task",
        "evaluate_student",
        "compare_ablations",
        "report",
    }

    # One dataset's seed reruns that dataset's chain; other datasets only in what follows.
    _edit_config(workdir, lambda c: c["datasets"]["syn_mef"]["synthetic"].update(seed=99))
    plan = _planned_jobs(run_snakemake(workdir, "-n", "--cores", "1", "all").stdout)
    assert ("prepare_dataset", "syn_mef") in plan and ("run_teacher", "syn_mef") in plan
    assert not any(
        rule in {"prepare_dataset", "run_teacher", "score_pseudolabels"}
        for rule, name in plan
        if name != "syn_mef"
    )
