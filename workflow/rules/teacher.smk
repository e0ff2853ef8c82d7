rule run_teacher:
    input:
        manifest="results/datasets/{dataset}/manifest.parquet",
        images="results/datasets/{dataset}/images",
        external=teacher_external_files,
    output:
        images=directory("results/teachers/{dataset}/{teacher}/images"),
        timing="results/teachers/{dataset}/{teacher}/timing.parquet",
    log:
        "logs/run_teacher/{dataset}/{teacher}.log",
    benchmark:
        "benchmarks/run_teacher/{dataset}/{teacher}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        parent_run=PARENT_RUN,
        task=dataset_task,
        spec=teacher_spec,
        mlflow=config["mlflow"],
    script:
        "../scripts/run_teacher.py"
