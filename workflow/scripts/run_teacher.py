from fusionfm.stages import run_teacher
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    run_teacher(
        dataset=snakemake.wildcards.dataset,
        teacher=snakemake.wildcards.teacher,
        task=snakemake.params.task,
        spec=snakemake.params.spec,
        manifest=snakemake.input.manifest,
        out_images=snakemake.output.images,
        out_timing=snakemake.output.timing,
        workers=snakemake.threads,
        mlflow=snakemake.params.mlflow,
        parent_run=snakemake.params.parent_run,
    )
