from fusionfm.stages import prepare_dataset
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    prepare_dataset(
        name=snakemake.wildcards.dataset,
        spec=snakemake.params.spec,
        split=snakemake.params.split,
        out_manifest=snakemake.output.manifest,
        out_images=snakemake.output.images,
        source_dir=snakemake.input.get("source"),
        mlflow=snakemake.params.mlflow,
        parent_run=snakemake.params.parent_run,
    )
