rule evaluate_student:
    input:
        models=variant_models,
        manifests=expand(
            "results/datasets/{dataset}/manifest.parquet", dataset=TRAINED_DATASETS
        ),
        scores=expand("results/scores/{dataset}.parquet", dataset=TRAINED_DATASETS),
        labels=variant_labels,
    output:
        table="results/evaluate/{variant}/eval.parquet",
        forgetting="results/evaluate/{variant}/forgetting.parquet",
        summary="results/evaluate/{variant}/summary.parquet",
        metric_table="results/evaluate/{variant}/metric_table.parquet",
        forgetting_plot="results/evaluate/{variant}/forgetting.png",
        summary_plot="results/evaluate/{variant}/summary.png",
        fused=directory("results/evaluate/{variant}/fused"),
    log:
        "logs/evaluate_student/{variant}.log",
    benchmark:
        "benchmarks/evaluate_student/{variant}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    params:
        parent_run=PARENT_RUN,
        stages=lambda wildcards: variant_stages(wildcards.variant),
        datasets=TRAINED_DATASETS,
        tasks=[DATASETS[d]["task"] for d in TRAINED_DATASETS],
        evaluate=config["evaluate"],
        selection=config["selection"],
        mlflow=config["mlflow"],
    script:
        "../scripts/evaluate_student.py"


rule compare_ablations:
    input:
        forgetting=expand(
            "results/evaluate/{variant}/forgetting.parquet", variant=VARIANTS
        ),
        summary=expand("results/evaluate/{variant}/summary.parquet", variant=VARIANTS),
    output:
        "results/evaluate/ablations.parquet",
    log:
        "logs/compare_ablations/compare_ablations.log",
    conda:
        "../../environment.yml"
    params:
        parent_run=PARENT_RUN,
        variants=list(VARIANTS),
        schedules=[VARIANTS[v]["schedule"] for v in VARIANTS],
        labels=[VARIANTS[v]["labels"] for v in VARIANTS],
        task_order=[stage.split("_", 1)[1] for stage in STAGES],
        mlflow=config["mlflow"],
    script:
        "../scripts/compare_ablations.py"


rule report:
    input:
        summary="results/evaluate/main/summary.parquet",
        eval="results/evaluate/main/eval.parquet",
        metric_table="results/evaluate/main/metric_table.parquet",
        forgetting="results/evaluate/main/forgetting.parquet",
        fused="results/evaluate/main/fused",
        histories=[h for v in VARIANTS for h in variant_histories(v)],
        teachers=[
            f"results/teachers/{d}/{t}/images"
            for d in TRAINED_DATASETS
            for t in sorted(TEACHERS[d])
        ],
        ablations="results/evaluate/ablations.parquet",
        manifests=expand(
            "results/datasets/{dataset}/manifest.parquet", dataset=TRAINED_DATASETS
        ),
        selections=expand(
            "results/selection/{dataset}.parquet", dataset=TRAINED_DATASETS
        ),
        labels=expand("results/refine/{dataset}/images", dataset=TRAINED_DATASETS),
    output:
        "results/report/index.html",
    log:
        "logs/report/report.log",
    conda:
        "../../environment.yml"
    params:
        parent_run=PARENT_RUN,
        datasets=TRAINED_DATASETS,
        teachers={d: sorted(TEACHERS[d]) for d in TRAINED_DATASETS},
        history_variants=[v for v in VARIANTS for _ in variant_histories(v)],
        mlflow=config["mlflow"],
    script:
        "../scripts/report.py"
