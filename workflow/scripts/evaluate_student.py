from fusionfm.stages import evaluate_student
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    evaluate_student(
        variant=snakemake.wildcards.variant,
        stages=snakemake.params.stages,
        models=snakemake.input.models,
        datasets=snakemake.params.datasets,
        tasks=snakemake.params.tasks,
        manifests=snakemake.input.manifests,
        scores=snakemake.input.scores,
        labels=snakemake.input.labels,
        evaluate_config=snakemake.params.evaluate,
        selection_config=snakemake.params.selection,
        out_dir=snakemake.output.table.rsplit("/", 1)[0],
        workers=snakemake.threads,
        mlflow=snakemake.params.mlflow,
        parent_run=snakemake.params.parent_run,
    )
