from snakemake.utils import validate

from fusionfm.config import resolve_datasets

validate(config, schema="../schemas/config.schema.yaml", set_default=True)
DATASETS = resolve_datasets(config)
PARENT_RUN = "results/mlflow/parent.json"  # one MLflow parent run per results tree


wildcard_constraints:
    dataset="|".join(DATASETS) or "(?!)",


def dataset_spec(wildcards):
    return DATASETS[wildcards.dataset]


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


def final_outputs():
    return expand("results/datasets/{dataset}/manifest.parquet", dataset=DATASETS)
