rule mlflow_parent:
    output:
        "results/mlflow/parent.json",
    params:
        mlflow=config["mlflow"],
    log:
        "logs/mlflow_parent/mlflow_parent.log",
    script:
        "../scripts/mlflow_parent.py"
