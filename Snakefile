# Five NeurIPS 2025 findings as one DAG: data → training (DeepSpeed, 1..N ranks) →
# evaluation → figures → claims table. Config is validated before any job runs.
#   snakemake --cores all                                   # CPU default, every study small
#   snakemake --cores all --configfile config/presets/smoke.yaml
#   snakemake --profile profiles/slurm --configfile config/presets/paper.yaml
#   snakemake <study>                                       # one study: gated_attention, diffusion, crl, rlvr, hivemind
configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/gated_attention.smk"
for _study in STUDIES[1:]:  # TEMP while studies land
    if Path(f"{workflow.basedir}/workflow/rules/{_study}.smk").exists() and _study in config["studies"]:
        include: f"workflow/rules/{_study}.smk"
include: "workflow/rules/claims.smk"


localrules: all, claims


rule all:
    input:
        "results/claims.parquet",
        "results/claims.md",
