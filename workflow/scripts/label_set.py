from fusionfm.stages import label_set
from fusionfm.utils import log_to_file

snakemake = globals()["snakemake"]  # the job object Snakemake injects before this script

with log_to_file(snakemake.log[0]):
    label_set(
        kind=snakemake.wildcards.labelset,
        dataset=snakemake.wildcards.dataset,
        manifest=snakemake.input.manifest,
        selection=snakemake.input.selection,
        teachers=snakemake.params.teachers,
        teacher_images=snakemake.input.teachers,
        out_dir=snakemake.output[0],
        seed=snakemake.params.seed,
    )
