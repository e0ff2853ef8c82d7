from fusionfm.stages import score_pseudolabels
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    score_pseudolabels(
        dataset=snakemake.wildcards.dataset,
        task=snakemake.params.task,
        manifest=snakemake.input.manifest,
        teacher_images=dict(zip(snakemake.params.teachers, snakemake.input.teachers, strict=True)),
        out_table=snakemake.output[0],
        workers=snakemake.threads,
        mlflow=snakemake.params.mlflow,
        parent_run=snakemake.params.parent_run,
    )
