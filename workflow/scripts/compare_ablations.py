from fusionfm.stages import compare_ablations
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    compare_ablations(
        variants=snakemake.params.variants,
        schedules=snakemake.params.schedules,
        labels=snakemake.params.labels,
        forgetting=snakemake.input.forgetting,
        summaries=snakemake.input.summary,
        task_order=snakemake.params.task_order,
        out_table=snakemake.output[0],
        mlflow=snakemake.params.mlflow,
        parent_run=snakemake.params.parent_run,
    )
