rule download_dataset:
    output:
        directory("resources/datasets/{dataset}"),
    log:
        "logs/download_dataset/{dataset}.log",
    conda:
        "../../environment.yml"
    params:
        spec=dataset_spec,
    script:
        "../scripts/download_dataset.py"


rule prepare_dataset:
    input:
        unpack(dataset_inputs),
    output:
        manifest="results/datasets/{dataset}/manifest.parquet",
        images=directory("results/datasets/{dataset}/images"),
    log:
        "logs/prepare_dataset/{dataset}.log",
    benchmark:
        "benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        parent_run=PARENT_RUN,
        spec=dataset_spec,
        split=dataset_split,
        mlflow=config["mlflow"],
    script:
        "../scripts/prepare_dataset.py"
