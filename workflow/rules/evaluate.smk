rule evaluate_student:
    input:
        models=expand("results/train/{stage}/model.pt", stage=STAGES),
        manifests=expand(
            "results/datasets/{dataset}/manifest.parquet", dataset=TRAINED_DATASETS
        ),
        scores=expand("results/scores/{dataset}.parquet", dataset=TRAINED_DATASETS),
        labels=expand("results/refine/{dataset}/images", dataset=TRAINED_DATASETS),
        parent_run=ancient(PARENT_RUN),
    output:
        table="results/evaluate/eval.parquet",
        forgetting="results/evaluate/forgetting.parquet",
        summary="results/evaluate/summary.parquet",
        forgetting_plot="results/evaluate/forgetting.png",
        summary_plot="results/evaluate/summary.png",
    log:
        "logs/evaluate_student/evaluate_student.log",
    benchmark:
        "benchmarks/evaluate_student/evaluate_student.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    params:
        stages=STAGES,
        datasets=TRAINED_DATASETS,
        tasks=[DATASETS[d]["task"] for d in TRAINED_DATASETS],
        evaluate=config["evaluate"],
        selection=config["selection"],
        mlflow=config["mlflow"],
    script:
        "../scripts/evaluate_student.py"
