from fusionfm.stages import create_parent_run
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    create_parent_run(
        parent_json=snakemake.output[0], config=snakemake.config, **snakemake.config["mlflow"]
    )
