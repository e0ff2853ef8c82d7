from fusionfm.stages import refine_labels
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    refine_labels(
        dataset=snakemake.wildcards.dataset,
        task=snakemake.params.task,
        manifest=snakemake.input.manifest,
        scores=snakemake.input.scores,
        selection=snakemake.input.selection,
        teacher_images=dict(zip(snakemake.params.teachers, snakemake.input.teachers, strict=True)),
        selection_config=snakemake.params.selection,
        refiner_config=snakemake.params.refiner,
        out_images=snakemake.output.images,
        out_table=snakemake.output.table,
        out_report=snakemake.output.report,
        workers=snakemake.threads,
        mlflow=snakemake.params.mlflow,
        parent_run=snakemake.params.parent_run,
    )
