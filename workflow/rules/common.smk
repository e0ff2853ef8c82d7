from snakemake.utils import validate

from fusionfm.config import resolve_datasets
from fusionfm.teacher.plan import resolve_teachers, teacher_input_files

validate(config, schema="../schemas/config.schema.yaml", set_default=True)
DATASETS = resolve_datasets(config)
TEACHERS = resolve_teachers(config, DATASETS)  # dataset -> teacher -> spec
PARENT_RUN = "results/mlflow/parent.json"  # one MLflow parent run per results tree
TASKS_WITH_LABELS = {DATASETS[d]["task"] for d in DATASETS if TEACHERS[d]}
STAGES = [
    f"{k:02d}_{task}"
    for k, task in enumerate(
        t for t in config["train"]["task_order"] if t in TASKS_WITH_LABELS
    )
]  # sequential training stages, e.g. 00_ivf, 01_mif, ...
VARIANTS = {"main": {}, **config["ablations"]["variants"]}  # name -> train overrides


wildcard_constraints:
    dataset="|".join(DATASETS) or "(?!)",
    teacher="|".join(sorted({t for teachers in TEACHERS.values() for t in teachers}))
    or "(?!)",
    stage="|".join(STAGES) or "(?!)",
    variant="|".join(VARIANTS),


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


def stage_task(wildcards):
    return wildcards.stage.split("_", 1)[1]


def stage_datasets(wildcards):
    task = stage_task(wildcards)
    return [d for d in DATASETS if DATASETS[d]["task"] == task and TEACHERS[d]]


def stage_manifests(wildcards):
    return [f"results/datasets/{d}/manifest.parquet" for d in stage_datasets(wildcards)]


def stage_labels(wildcards):
    return [f"results/refine/{d}/images" for d in stage_datasets(wildcards)]


def variant_train_config(wildcards):
    """The train section with the variant's overrides (``main`` has none)."""
    return {**config["train"], **VARIANTS[wildcards.variant]}


def variant_models(wildcards):
    return [f"results/train/{wildcards.variant}/{stage}/model.pt" for stage in STAGES]


def previous_task_state(wildcards):
    """The previous stage's model, EWC and replay files (none for the first task)."""
    k = STAGES.index(wildcards.stage)
    if k == 0:
        return {}
    previous = f"results/train/{wildcards.variant}/{STAGES[k - 1]}"
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
        outputs.append("results/evaluate/main/summary.parquet")
    return outputs


def ablation_outputs():
    return ["results/evaluate/ablations.parquet"] if STAGES else []
