from snakemake.utils import validate

from fusionfm.config import (
    check_config_schema,
    first_stage_owners,
    resolve_datasets,
    resolve_variants,
    sorted_keys,
)
from fusionfm.teacher.plan import resolve_teachers, teacher_input_files
from fusionfm.utils import exit_on_input_error

CONFIG_SCHEMA = f"{workflow.current_basedir}/../schemas/config.schema.yaml"
# A bad config stops here in one line naming the key; Snakemake's own check fills defaults.
with exit_on_input_error():
    check_config_schema(config, CONFIG_SCHEMA)
validate(config, schema=CONFIG_SCHEMA, set_default=True)
# Key order in a config file reruns nothing; the ablations keep theirs (the table's row order).
config.update(sorted_keys({k: v for k, v in config.items() if k != "ablations"}))
with exit_on_input_error():
    DATASETS = resolve_datasets(config)
    TEACHERS = resolve_teachers(config, DATASETS)  # dataset -> teacher -> spec
PARENT_RUN = "results/mlflow/parent.json"  # one MLflow parent run per results tree
TASKS_WITH_LABELS = {DATASETS[d]["task"] for d in DATASETS if TEACHERS[d]}
STAGES = [
    f"{k:02d}_{task}"
    for k, task in enumerate(
        t for t in config["train"]["task_order"] if t in TASKS_WITH_LABELS
    )
]  # sequential training stages, e.g. 00_mef, 01_ivf, ...
with exit_on_input_error():
    VARIANTS = resolve_variants(config)  # name -> {train overrides, labels, schedule}
JOINT_STAGE = "00_joint"  # the single stage of a `schedule: joint` variant
# Sequential variants that cannot differ before the second task train the first stage once.
FIRST_STAGE_OWNER = first_stage_owners(VARIANTS, config["train"])


wildcard_constraints:
    dataset="|".join(DATASETS) or "(?!)",
    teacher="|".join(sorted({t for teachers in TEACHERS.values() for t in teachers}))
    or "(?!)",
    stage="|".join([*STAGES, JOINT_STAGE]) if STAGES else "(?!)",
    variant="|".join(VARIANTS),
    labelset="selected|random",


def dataset_spec(wildcards):
    return DATASETS[wildcards.dataset]


def dataset_task(wildcards):
    return DATASETS[wildcards.dataset]["task"]


def teacher_spec(wildcards):
    teachers = TEACHERS[wildcards.dataset]
    if wildcards.teacher not in teachers:
        raise ValueError(
            f"teacher {wildcards.teacher!r} does not run on dataset {wildcards.dataset!r}; "
            f"its teachers are: {', '.join(teachers)}"
        )
    return teachers[wildcards.teacher]


def teacher_names(wildcards):
    return sorted(TEACHERS[wildcards.dataset])


def teacher_image_dirs(wildcards):
    return [
        f"results/teachers/{wildcards.dataset}/{teacher}/images"
        for teacher in teacher_names(wildcards)
    ]


def teacher_external_files(wildcards):
    """Files an external teacher reads (precomputed results, a model), so edits rerun it."""
    return [str(p) for p in teacher_input_files(teacher_spec(wildcards))]


def dataset_inputs(wildcards):
    """The downloaded archive folder (url) or the source files (dir) a dataset is built from."""
    spec = DATASETS[wildcards.dataset]
    if spec["source"] == "url":
        return {"source": f"resources/datasets/{wildcards.dataset}"}
    if spec["source"] == "dir":
        return {"files": dir_source_files(spec)}
    return {}


def dir_source_files(spec):
    from fusionfm.data.sources import list_source_files

    return [
        str(p)
        for p in list_source_files(
            spec["path"], spec["modalities"], spec.get("ground_truth")
        )
    ]


def dataset_split(wildcards):
    spec = DATASETS[wildcards.dataset]
    return {
        "test_fraction": spec.get("test_fraction", config["split"]["test_fraction"]),
        "seed": config["split"]["seed"],
    }


TRAINED_DATASETS = [
    d for d in DATASETS if TEACHERS[d] and f"_{DATASETS[d]['task']}" in "".join(STAGES)
]


def variant_stages(variant):
    """The variant's training stages: one per task, or the single joint stage."""
    joint = VARIANTS[variant]["schedule"] == "joint"
    return [JOINT_STAGE] if joint and STAGES else STAGES


def stage_task(wildcards):
    return wildcards.stage.split("_", 1)[1]


def stage_datasets(wildcards):
    task = stage_task(wildcards)
    return [d for d in TRAINED_DATASETS if task in ("joint", DATASETS[d]["task"])]


def stage_dataset_tasks(wildcards):
    return [DATASETS[d]["task"] for d in stage_datasets(wildcards)]


def stage_manifests(wildcards):
    return [f"results/datasets/{d}/manifest.parquet" for d in stage_datasets(wildcards)]


def label_dir(variant, dataset):
    """Where a variant's pseudo-labels of a dataset lie (refined, selected or random)."""
    labels = VARIANTS[variant]["labels"]
    if labels == "refined":
        return f"results/refine/{dataset}/images"
    return f"results/labels/{dataset}/{labels}"


def stage_labels(wildcards):
    return [label_dir(wildcards.variant, d) for d in stage_datasets(wildcards)]


def variant_labels(wildcards):
    return [label_dir(wildcards.variant, d) for d in TRAINED_DATASETS]


def variant_train_config(wildcards):
    """The train section with the variant's overrides (``main`` has none), keys sorted so
    that reordering a config file does not rerun training."""
    return sorted_keys({**config["train"], **VARIANTS[wildcards.variant]["train"]})


def stage_dir(variant, stage):
    """Where a variant's stage is trained (the first stage may be another variant's)."""
    first = stage == variant_stages(variant)[0]
    return f"results/train/{FIRST_STAGE_OWNER[variant] if first else variant}/{stage}"


def variant_models(wildcards):
    return [
        f"{stage_dir(wildcards.variant, stage)}/model.pt"
        for stage in variant_stages(wildcards.variant)
    ]


def variant_histories(variant):
    return [
        f"{stage_dir(variant, stage)}/history.parquet"
        for stage in variant_stages(variant)
    ]


def previous_task_state(wildcards):
    """The previous stage's model, EWC and replay files (none for the first task)."""
    stages = variant_stages(wildcards.variant)
    if wildcards.stage not in stages:
        raise ValueError(
            f"variant {wildcards.variant!r} has no stage {wildcards.stage!r}: {stages}"
        )
    k = stages.index(wildcards.stage)
    if k == 0 and FIRST_STAGE_OWNER[wildcards.variant] != wildcards.variant:
        raise ValueError(
            f"variant {wildcards.variant!r} reuses the first stage of "
            f"{FIRST_STAGE_OWNER[wildcards.variant]!r}"
        )
    if k == 0:
        return {}
    previous = stage_dir(wildcards.variant, stages[k - 1])
    return {
        "ckpt": f"{previous}/model.pt",
        "ewc": f"{previous}/ewc.pt",
        "replay": f"{previous}/replay.pt",
    }


def final_outputs():
    outputs = expand("results/datasets/{dataset}/manifest.parquet", dataset=DATASETS)
    for dataset in DATASETS:
        if TEACHERS[dataset]:
            outputs += [
                f"results/selection/{dataset}.json",
                f"results/refine/{dataset}.json",
            ]
    if STAGES:
        outputs.append("results/report/index.html")
    return outputs


def ablation_outputs():
    return ["results/evaluate/ablations.parquet"] if STAGES else []
