from fusionfm.stages import train_task
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    train_task(
        stage=snakemake.wildcards.stage,
        variant=snakemake.wildcards.variant,
        task=snakemake.params.task,
        manifests=snakemake.input.manifests,
        labels=snakemake.input.labels,
        dataset_tasks=snakemake.params.dataset_tasks,
        previous=snakemake.input.get("ckpt"),
        train_config=snakemake.params.train,
        out_model=snakemake.output.model,
        out_ewc=snakemake.output.ewc,
        out_replay=snakemake.output.replay,
        out_history=snakemake.output.history,
        mlflow=snakemake.params.mlflow,
        parent_run=snakemake.params.parent_run,
        threads=snakemake.threads,
    )
