from fusionfm.stages import select_pseudolabels
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    select_pseudolabels(
        dataset=snakemake.wildcards.dataset,
        task=snakemake.params.task,
        manifest=snakemake.input.manifest,
        scores=snakemake.input.scores,
        selection_config=snakemake.params.selection,
        out_table=snakemake.output.table,
        out_report=snakemake.output.report,
        mlflow=snakemake.params.mlflow,
        parent_run=snakemake.params.parent_run,
    )
