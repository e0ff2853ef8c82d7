from fusionfm.stages import download_dataset
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    download_dataset(spec=snakemake.params.spec, dest=snakemake.output[0])
