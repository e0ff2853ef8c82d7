# fusionfm: one Snakemake DAG from source pairs to the fused images of a flow-matching student.
# Stages (see README): datasets -> teachers -> scores -> selection -> refiner -> train -> evaluate
# -> report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/pseudolabels.smk"
include: "workflow/rules/refine.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


localrules:
    all,
    ablations,
    compare_ablations,
    report,
    download_dataset,


rule all:
    default_target: True
    input:
        final_outputs(),


# Only the ablations (config `ablations.variants`: naive fine-tuning, EWC only, replay only,
# joint training, no refiner, no selection) and their comparison; `all` runs them too, for the
# report: `snakemake --cores 8 ablations`.
rule ablations:
    input:
        ablation_outputs(),
