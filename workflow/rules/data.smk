rule download_dataset:
    output:
        directory("resources/datasets/{dataset}"),
    params:
        spec=dataset_spec,
    log:
        "logs/download_dataset/{dataset}.log",
    script:
        "../scripts/download_dataset.py"


rule prepare_dataset:
    input:
        unpack(dataset_inputs),
    output:
        manifest="results/datasets/{dataset}/manifest.parquet",
        images=directory("results/datasets/{dataset}/images"),
    params:
        spec=dataset_spec,
        split=dataset_split,
        mlflow=config["mlflow"],
    log:
        "logs/prepare_dataset/{dataset}.log",
    benchmark:
        "benchmarks/prepare_dataset/{dataset}.tsv"
    script:
        "../scripts/prepare_dataset.py"
