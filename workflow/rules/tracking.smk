# One MLflow parent run per results tree, recorded in results/mlflow/parent.json before any job
# runs (get or create: rerunning finds the same parent). Jobs take its path as a parameter, not as
# an input: it is bookkeeping, and a job producing it would sit upstream of every job.
onstart:
    from fusionfm.stages import create_parent_run
    from fusionfm.utils import exit_on_input_error

    with exit_on_input_error():
        create_parent_run(
            PARENT_RUN,
            config,
            config["mlflow"]["enabled"],
            config["mlflow"]["experiment"],
        )


# With `mlflow.defer` (the default) jobs record their runs in results/mlflow/journal; they are
# logged to MLflow here, once, whether the workflow succeeded or failed.
def sync_mlflow_journal():
    import sys
    from fusionfm.stages import sync_tracking

    mlflow = config["mlflow"]
    print(
        sync_tracking(PARENT_RUN, mlflow["enabled"], mlflow["experiment"]),
        file=sys.stderr,
    )


onsuccess:
    sync_mlflow_journal()


onerror:
    sync_mlflow_journal()
