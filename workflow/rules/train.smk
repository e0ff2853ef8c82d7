rule train_task:
    input:
        unpack(previous_task_state),
        manifests=stage_manifests,
        labels=stage_labels,
        parent_run=ancient(PARENT_RUN),
    output:
        model="results/train/{variant}/{stage}/model.pt",
        ewc="results/train/{variant}/{stage}/ewc.pt",
        replay="results/train/{variant}/{stage}/replay.pt",
    log:
        "logs/train_task/{variant}/{stage}.log",
    benchmark:
        "benchmarks/train_task/{variant}/{stage}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        task=stage_task,
        train=variant_train_config,
        mlflow=config["mlflow"],
    script:
        "../scripts/train_task.py"
