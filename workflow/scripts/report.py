from fusionfm.stages import report
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    report(
        summary=snakemake.input.summary,
        eval_table=snakemake.input.eval,
        ranking=snakemake.input.metric_table,
        forgetting=snakemake.input.forgetting,
        histories=snakemake.input.histories,
        history_variants=snakemake.params.history_variants,
        ablations=snakemake.input.ablations,
        datasets=snakemake.params.datasets,
        manifests=snakemake.input.manifests,
        selections=snakemake.input.selections,
        teachers=snakemake.params.teachers,
        teacher_images=snakemake.input.teachers,
        labels=snakemake.input.labels,
        fused=snakemake.input.fused,
        out_html=snakemake.output[0],
        mlflow=snakemake.params.mlflow,
        parent_run=snakemake.params.parent_run,
    )
