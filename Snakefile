# Five NeurIPS 2025 findings as one DAG: data → training (DeepSpeed, 1..N ranks) →
# evaluation → figures → claims table. Config is validated before any job runs.
#   snakemake --cores all                                   # CPU default, every study small
#   snakemake --cores all --configfile config/presets/smoke.yaml
#   snakemake --profile profiles/slurm --configfile config/presets/paper.yaml
#   snakemake <study>                                       # one study: gated_attention, diffusion, crl, rlvr, hivemind
from snakemake.utils import min_version

min_version("9.27")


configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/gated_attention.smk"
include: "workflow/rules/diffusion.smk"
include: "workflow/rules/crl.smk"
include: "workflow/rules/rlvr.smk"
include: "workflow/rules/hivemind.smk"
include: "workflow/rules/claims.smk"


localrules: all, claims


rule all:
    input:
        "results/claims.parquet",
        "results/claims.md",
        [f for study in ENABLED for f in getattr(rules, study).input],  # every study's figures
