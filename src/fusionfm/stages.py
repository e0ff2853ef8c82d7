"""One entry point per workflow rule: what each Snakemake job does, importable and testable.

The scripts in ``workflow/scripts`` only unpack ``snakemake.*`` and call one of these. Every
entry that computes is tracked as a child run of the results tree's MLflow parent run.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusionfm.config import DatasetSpec, SplitSpec
from fusionfm.io import atomic_path

PARENT_JSON = Path("results/mlflow/parent.json")
"""The results tree's MLflow parent run record, relative to the working directory."""

log = logging.getLogger("fusionfm.stages")


def create_parent_run(
    parent_json: str | os.PathLike[str],
    config: Mapping[str, Any],
    enabled: bool = True,
    experiment: str = "fusionfm",
) -> None:
    """The workflow's ``onstart``: get or create the parent run and record it in ``parent_json``.

    With tracking disabled the file still appears (``{"enabled": false}``), so the DAG is the
    same either way.
    """
    from fusionfm.tracking import ensure_parent_run, tracking_enabled

    if tracking_enabled(enabled):
        info = ensure_parent_run(parent_json, experiment, config=config, enabled=True)
        log.info("parent run %s in experiment %s", info.get("run_id"), experiment)
        return
    with atomic_path(parent_json) as tmp:
        tmp.write_text(json.dumps({"enabled": False}) + "\n")
    log.info("tracking disabled")


def sync_tracking(
    parent_json: str | os.PathLike[str],
    enabled: bool = True,
    experiment: str | None = None,
) -> str:
    """The workflow's ``onsuccess`` and ``onerror``: log the jobs' deferred runs to MLflow.

    A failure does not raise: the records stay in the journal for the next run's sync.

    Args:
        parent_json: the results tree's ``parent.json``.
        enabled: the config switch.
        experiment: experiment for a parent run that has to be created; ``None``: the one
            ``parent_json`` records, else ``fusionfm``.

    Returns:
        One line for the workflow's output: what was logged, or why not.
    """
    from fusionfm.tracking import (
        journal_dir,
        recorded_experiment,
        sync_journal,
        tracking_enabled,
        tracking_uri,
    )

    if not tracking_enabled(enabled):
        return "MLflow: tracking disabled"
    if experiment is None:
        experiment = recorded_experiment(parent_json) or "fusionfm"
    try:
        count = sync_journal(parent_json, experiment, enabled)
    except Exception as err:
        return (
            f"MLflow: the job records in {journal_dir(parent_json)} were not logged ({err}); "
            "the next run logs them"
        )
    if not count:
        return "MLflow: no new job runs to log"
    return f"MLflow: logged {count} job run(s) to {tracking_uri()}"


def download_dataset(spec: Mapping[str, Any], dest: str | os.PathLike[str]) -> None:
    """Rule ``download_dataset``: fetch, verify and safely extract a ``url`` dataset."""
    from fusionfm.data.sources import download_archive

    path = download_archive(spec["url"], spec["sha256"], dest)
    log.info("extracted %s into %s", spec["url"], path)


def prepare_dataset(
    name: str,
    spec: Mapping[str, Any],
    split: Mapping[str, Any],
    out_manifest: str | os.PathLike[str],
    out_images: str | os.PathLike[str],
    source_dir: str | os.PathLike[str] | None,
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str] = PARENT_JSON,
) -> None:
    """Rule ``prepare_dataset``: normalized pairs plus ``manifest.parquet`` for one dataset."""
    from fusionfm.data.build import build_dataset

    dataset = DatasetSpec.from_dict(name, spec)
    with _tracked(
        "prepare_dataset", {"dataset": name}, mlflow, parent_run, params=dict(spec)
    ) as tracker:
        manifest = build_dataset(
            dataset, out_images, out_manifest, SplitSpec.from_dict(split), source_root=source_dir
        )
        counts = manifest["split"].value_counts()
        tracker.log_metrics(
            {
                "pairs": len(manifest),
                "train_pairs": int(counts.get("train", 0)),
                "test_pairs": int(counts.get("test", 0)),
                "with_ground_truth": int(manifest["path_gt"].notna().sum()),
            }
        )
        log.info("%s: %d pairs (%s)", name, len(manifest), dict(counts))


def _tracked(
    rule: str,
    wildcards: Mapping[str, str],
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
):
    from fusionfm.tracking import stage_run

    return stage_run(parent_run, rule, wildcards, params=params, **_tracking_options(mlflow))


def _tracking_options(mlflow: Mapping[str, Any]) -> dict[str, Any]:
    """The ``experiment``, ``enabled`` and ``defer`` arguments of the tracking calls, from the
    validated ``mlflow`` config section."""
    return {key: mlflow[key] for key in ("experiment", "enabled", "defer")}


def run_teacher(
    dataset: str,
    teacher: str,
    task: str,
    spec: Mapping[str, Any],
    manifest: str | os.PathLike[str],
    out_images: str | os.PathLike[str],
    out_timing: str | os.PathLike[str],
    workers: int,
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str] = PARENT_JSON,
) -> None:
    """Rule ``run_teacher``: one teacher fuses every pair of one dataset."""
    from fusionfm.teacher.stage import run_teacher_stage

    wildcards = {"dataset": dataset, "teacher": teacher}
    with _tracked("run_teacher", wildcards, mlflow, parent_run, params=dict(spec)) as tracker:
        timing = run_teacher_stage(
            Path(manifest).parent,
            task,
            teacher,
            spec,
            Path(out_images),
            Path(out_timing),
            workers=workers,
        )
        fused = timing[timing["status"] == "ok"]
        tracker.log_metrics(
            {
                "pairs": len(fused),
                "skipped": int((timing["status"] != "ok").sum()),
                "ms_per_pair": 1000 * float(fused["seconds"].mean())
                if len(fused)
                else float("nan"),
            }
        )
        log.info(
            "%s/%s: fused %d pairs, skipped %d",
            dataset,
            teacher,
            len(fused),
            len(timing) - len(fused),
        )


def score_pseudolabels(
    dataset: str,
    task: str,
    manifest: str | os.PathLike[str],
    teacher_images: Mapping[str, str | os.PathLike[str]],
    out_table: str | os.PathLike[str],
    workers: int,
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str] = PARENT_JSON,
) -> None:
    """Rule ``score_pseudolabels``: every teacher output on the metric suite, long form."""
    from fusionfm.pseudolabel.scoring import score_dataset

    with _tracked(
        "score_pseudolabels",
        {"dataset": dataset},
        mlflow,
        parent_run,
        params={"teachers": sorted(teacher_images)},
    ) as tracker:
        table = score_dataset(Path(manifest).parent, task, teacher_images, out_table, workers)
        teacher_rows = table[table["role"] == "teacher"]
        means = teacher_rows.groupby(["candidate", "metric"])["value"].mean()
        tracker.log_metrics(
            {f"{teacher}/{metric}": value for (teacher, metric), value in means.items()}
        )
        log.info("%s: %d score rows for %d teachers", dataset, len(table), len(teacher_images))


def select_pseudolabels(
    dataset: str,
    task: str,
    manifest: str | os.PathLike[str],
    scores: str | os.PathLike[str],
    selection_config: Mapping[str, Any],
    out_table: str | os.PathLike[str],
    out_report: str | os.PathLike[str],
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str] = PARENT_JSON,
) -> None:
    """Rule ``select_pseudolabels``: the task-aware choice of one pseudo-label per pair."""
    from fusionfm.io import (
        MANIFEST_SCHEMA,
        SCORES_SCHEMA,
        SELECTION_SCHEMA,
        read_table,
        write_table,
    )
    from fusionfm.pseudolabel import selection as sel

    config = sel.SelectionConfig.from_dict(selection_config)
    with _tracked(
        "select_pseudolabels",
        {"dataset": dataset},
        mlflow,
        parent_run,
        params=dict(selection_config),
    ) as tracker:
        score_table = read_table(scores, SCORES_SCHEMA)
        choice = sel.select_pseudolabels(
            score_table, read_table(manifest, MANIFEST_SCHEMA), task, config
        )
        report = sel.selection_report(score_table, choice, task, config)
        write_table(out_table, choice, SELECTION_SCHEMA)
        with atomic_path(out_report) as tmp:
            tmp.write_text(json.dumps(report, indent=2, default=float) + "\n")
        tracker.log_metrics(_flat_numbers(report))
        tracker.log_dict(report, "selection_report.json")
        log.info("%s: %s", dataset, json.dumps(report, default=float))


def refine_labels(
    dataset: str,
    task: str,
    manifest: str | os.PathLike[str],
    scores: str | os.PathLike[str],
    selection: str | os.PathLike[str],
    teacher_images: Mapping[str, str | os.PathLike[str]],
    selection_config: Mapping[str, Any],
    refiner_config: Mapping[str, Any],
    out_images: str | os.PathLike[str],
    out_table: str | os.PathLike[str],
    out_report: str | os.PathLike[str],
    workers: int,
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str] = PARENT_JSON,
) -> None:
    """Rule ``refine_labels``: diagnose, decompose and enhance each selected pseudo-label."""
    from fusionfm.io import MANIFEST_SCHEMA, SCORES_SCHEMA, SELECTION_SCHEMA, read_table
    from fusionfm.pseudolabel import selection as sel
    from fusionfm.refine import refiner
    from fusionfm.refine.report import refine_report

    def teacher_image_path(teacher: str, pair: str) -> Path:
        return Path(teacher_images[teacher]) / f"{pair}.png"

    manifest_table = read_table(manifest, MANIFEST_SCHEMA)
    with _tracked(
        "refine_labels", {"dataset": dataset}, mlflow, parent_run, params=dict(refiner_config)
    ) as tracker:
        table = refiner.refine_dataset(
            manifest=manifest_table,
            selection=read_table(selection, SELECTION_SCHEMA),
            teacher_image_path=teacher_image_path,
            dataset_root=Path(manifest).parent,
            scores=read_table(scores, SCORES_SCHEMA),
            task=task,
            selection_config=sel.SelectionConfig.from_dict(selection_config),
            refiner_config=refiner.RefinerConfig.from_dict(refiner_config),
            out_images=Path(out_images),
            out_table=Path(out_table),
            workers=workers,
        )
        report = refine_report(
            table, manifest_table, Path(manifest).parent, teacher_image_path, Path(out_images)
        )
        with atomic_path(out_report) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
        tracker.log_metrics(_flat_numbers(report))
        tracker.log_dict(report, "refine_report.json")
        log.info("%s: %s", dataset, json.dumps(report))


def _flat_numbers(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a nested mapping, keyed ``a/b/c``."""
    flat: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= _flat_numbers(value, f"{name}/")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def label_set(
    kind: str,
    dataset: str,
    manifest: str | os.PathLike[str],
    selection: str | os.PathLike[str],
    teachers: list[str],
    teacher_images: list[str],
    out_dir: str | os.PathLike[str],
    seed: int,
) -> None:
    """Rule ``label_set``: a data ablation's pseudo-labels (``selected`` or ``random``)."""
    from collections import Counter

    from fusionfm.pseudolabel.labelsets import build_label_set

    chosen = build_label_set(
        kind,
        manifest,
        selection,
        dict(zip(teachers, teacher_images, strict=True)),
        out_dir,
        dataset,
        seed,
    )
    log.info(
        "%s/%s: %d labels, by teacher %s", dataset, kind, len(chosen), Counter(chosen.values())
    )


def train_task(
    stage: str,
    variant: str,
    task: str,
    manifests: list[str],
    labels: list[str],
    dataset_tasks: list[str],
    previous: str | os.PathLike[str] | None,
    train_config: Mapping[str, Any],
    out_model: str | os.PathLike[str],
    out_ewc: str | os.PathLike[str],
    out_replay: str | os.PathLike[str],
    out_history: str | os.PathLike[str],
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str] = PARENT_JSON,
    threads: int = 1,
) -> None:
    """Rule ``train_task``: learn one task, starting from the previous stage (EWC + replay).

    ``task == "joint"`` learns every task of ``dataset_tasks`` at once, for ``steps`` times the
    number of tasks (the sequential run's total). A killed job resumes from the periodic train
    state beside ``out_model`` on its rerun. Torch uses ``threads`` CPU threads (the job's).
    """
    import pandas as pd
    import torch

    torch.set_num_threads(max(1, threads))

    from fusionfm.train.data import JOINT, TaskMixture, load_task_data
    from fusionfm.train.trainer import TrainConfig, default_state_path
    from fusionfm.train.trainer import train_task as train

    settings = {k: v for k, v in train_config.items() if k != "task_order"}
    tasks = list(dict.fromkeys(dataset_tasks))
    if task == JOINT:
        settings["steps"] = int(settings.get("steps", TrainConfig.steps)) * len(tasks)
    config = TrainConfig.from_dict(settings)
    datasets = [
        (Path(m).parent, Path(label), t)
        for m, label, t in zip(manifests, labels, dataset_tasks, strict=True)
    ]
    wildcards = {"variant": variant, "stage": stage}
    with _tracked("train_task", wildcards, mlflow, parent_run, params=settings) as tracker:
        parts = [
            load_task_data([(d, lab) for d, lab, t in datasets if t == one], one, crop=config.crop)
            for one in (tasks if task == JOINT else [task])
        ]
        data = TaskMixture(parts) if task == JOINT else parts[0]
        result = train(
            task,
            data,
            config,
            previous,
            out_model,
            out_ewc,
            out_replay,
            tracker=tracker,
            resume_from=default_state_path(out_model),
            checkpoint_every=max(1, config.steps // 10),
        )
        history = pd.DataFrame(result.history).assign(variant=variant, stage=stage)
        with atomic_path(out_history) as tmp:
            history.to_parquet(tmp, index=False)
        log.info("%s: %s", stage, {k: v for k, v in vars(result).items() if k != "history"})


def evaluate_student(
    variant: str,
    stages: list[str],
    models: list[str],
    datasets: list[str],
    tasks: list[str],
    manifests: list[str],
    scores: list[str],
    labels: list[str],
    evaluate_config: Mapping[str, Any],
    selection_config: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    workers: int,
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str] = PARENT_JSON,
) -> None:
    """Rule ``evaluate_student``: every stage's model on every task's test split (the
    forgetting matrix), and the final model against the teachers and the pseudo-labels.

    The student runs on one torch thread; ``workers`` processes compute the metrics. Only the
    ``main`` variant's final model is timed at every step count of ``evaluate.timing_steps``.
    """
    import torch

    from fusionfm.evaluate import run_evaluation

    torch.set_num_threads(1)
    from fusionfm.io import SCORES_SCHEMA, read_table
    from fusionfm.pseudolabel.selection import SelectionConfig
    from fusionfm.tracking import log_to_parent

    with _tracked(
        "evaluate_student", {}, mlflow, parent_run, params=dict(evaluate_config)
    ) as tracker:
        result = run_evaluation(
            stages=[
                (stage, model, stage.split("_", 1)[1])
                for stage, model in zip(stages, models, strict=True)
            ],
            datasets=[
                (name, Path(m).parent, task)
                for name, m, task in zip(datasets, manifests, tasks, strict=True)
            ],
            scores={
                name: read_table(path, SCORES_SCHEMA)
                for name, path in zip(datasets, scores, strict=True)
            },
            labels_dirs=dict(zip(datasets, map(Path, labels), strict=True)),
            out_dir=out_dir,
            steps=evaluate_config["steps"],
            method=evaluate_config["method"],
            selection_config=SelectionConfig.from_dict(selection_config),
            timing_steps=tuple(evaluate_config["timing_steps"]),
            timing_pairs=evaluate_config["timing_pairs"],
            workers=workers,
            timed=variant == "main",  # the ablations share its architecture
        )
        summary = result["summary"].set_index("task")
        final = {
            f"final/{task}/{column}": float(value)
            for task, row in summary.iterrows()
            for column, value in row.items()
            if isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        }
        final["average_forgetting"] = float(result["average_forgetting"])
        tracker.log_metrics(final)
        for name in ("forgetting.png", "summary.png", "summary.parquet"):
            tracker.log_artifact(Path(out_dir) / name)
        if variant == "main":
            log_to_parent(parent_run, final, **_tracking_options(mlflow))
        log.info("average forgetting %.4f\n%s", result["average_forgetting"], summary.to_string())


def compare_ablations(
    variants: list[str],
    schedules: list[str],
    labels: list[str],
    forgetting: list[str],
    summaries: list[str],
    task_order: list[str],
    out_table: str | os.PathLike[str],
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str] = PARENT_JSON,
) -> None:
    """Rule ``compare_ablations``: average forgetting and final composites of every variant.

    A joint variant has no forgetting (one stage): NaN.
    """
    import pandas as pd

    from fusionfm.evaluate import average_forgetting

    rows = []
    columns = zip(variants, schedules, labels, forgetting, summaries, strict=True)
    for variant, schedule, label_set, forgetting_path, summary_path in columns:
        matrix = pd.read_parquet(forgetting_path)
        summary = pd.read_parquet(summary_path).set_index("task")
        row = {
            "variant": variant,
            "schedule": schedule,
            "labels": label_set,
            "average_forgetting": (
                float(average_forgetting(matrix, task_order))
                if schedule == "sequential"
                else math.nan
            ),
        }
        row |= {
            f"{task}_composite": float(summary.loc[task, "student_composite"])
            for task in summary.index
        }
        row["mean_composite"] = float(summary["student_composite"].mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    with _tracked("compare_ablations", {}, mlflow, parent_run) as tracker:
        with atomic_path(out_table) as tmp:
            table.to_parquet(tmp, index=False)
        tracker.log_metrics(
            {
                f"{row['variant']}/{key}": value
                for row in rows
                for key, value in row.items()
                if isinstance(value, float) and math.isfinite(value)
            }
        )
        log.info("ablations:\n%s", table.to_string(index=False))


def report(
    summary: str | os.PathLike[str],
    eval_table: str | os.PathLike[str],
    ranking: str | os.PathLike[str],
    forgetting: str | os.PathLike[str],
    histories: list[str],
    history_variants: list[str],
    ablations: str | os.PathLike[str],
    datasets: list[str],
    manifests: list[str],
    selections: list[str],
    teachers: Mapping[str, list[str]],
    teacher_images: list[str],
    labels: list[str],
    fused: str | os.PathLike[str],
    out_html: str | os.PathLike[str],
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str] = PARENT_JSON,
) -> None:
    """Rule ``report``: the HTML page of the run (``results/report/index.html``).

    ``history_variants[i]`` is the variant whose curve ``histories[i]`` belongs to (a shared first
    stage appears once per variant that builds on it).
    """
    import pandas as pd

    from fusionfm.report import build_report

    folders = iter(teacher_images)
    teacher_dirs = {d: {t: next(folders) for t in teachers[d]} for d in datasets}
    build_report(
        out_html,
        summary=pd.read_parquet(summary),
        eval_table=pd.read_parquet(eval_table),
        ranking=pd.read_parquet(ranking),
        forgetting=pd.read_parquet(forgetting),
        histories=pd.concat(
            [
                pd.read_parquet(h).assign(variant=v)
                for h, v in zip(histories, history_variants, strict=True)
            ],
            ignore_index=True,
        ),
        ablations=pd.read_parquet(ablations),
        datasets=datasets,
        dataset_dirs={d: Path(m).parent for d, m in zip(datasets, manifests, strict=True)},
        selections=dict(zip(datasets, selections, strict=True)),
        teacher_dirs=teacher_dirs,
        label_dirs=dict(zip(datasets, labels, strict=True)),
        fused_dir=fused,
    )
    with _tracked("report", {}, mlflow, parent_run) as tracker:
        tracker.log_artifact(Path(out_html))
    log.info("report: %s", out_html)
