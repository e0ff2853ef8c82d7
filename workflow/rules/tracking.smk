rule mlflow_parent:
    output:
        "results/mlflow/parent.json",
    log:
        "logs/mlflow_parent/mlflow_parent.log",
    conda:
        "../../environment.yml"
    params:
        mlflow=config["mlflow"],
    script:
        "../scripts/mlflow_parent.py"
