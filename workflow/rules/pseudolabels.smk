rule score_pseudolabels:
    input:
        manifest="results/datasets/{dataset}/manifest.parquet",
        images="results/datasets/{dataset}/images",
        teachers=teacher_image_dirs,
    output:
        "results/scores/{dataset}.parquet",
    log:
        "logs/score_pseudolabels/{dataset}.log",
    benchmark:
        "benchmarks/score_pseudolabels/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        parent_run=PARENT_RUN,
        task=dataset_task,
        teachers=teacher_names,
        mlflow=config["mlflow"],
    script:
        "../scripts/score_pseudolabels.py"


rule select_pseudolabels:
    input:
        manifest="results/datasets/{dataset}/manifest.parquet",
        scores="results/scores/{dataset}.parquet",
    output:
        table="results/selection/{dataset}.parquet",
        report="results/selection/{dataset}.json",
    log:
        "logs/select_pseudolabels/{dataset}.log",
    benchmark:
        "benchmarks/select_pseudolabels/{dataset}.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        parent_run=PARENT_RUN,
        task=dataset_task,
        selection=config["selection"],
        mlflow=config["mlflow"],
    script:
        "../scripts/select_pseudolabels.py"


# Labels of the data ablations: the selected teacher's output (no refiner) or a random
# teacher's (no selection), one folder of <pair>.png per dataset.
rule label_set:
    input:
        manifest="results/datasets/{dataset}/manifest.parquet",
        selection="results/selection/{dataset}.parquet",
        teachers=teacher_image_dirs,
    output:
        directory("results/labels/{dataset}/{labelset}"),
    log:
        "logs/label_set/{dataset}/{labelset}.log",
    conda:
        "../../environment.yml"
    params:
        teachers=teacher_names,
        seed=config["split"]["seed"],
    script:
        "../scripts/label_set.py"
