"""Intra-/inter-model similarity tables, random-pair baseline, summary and claims."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.hivemind.jobs import analyse_job  # noqa: E402

out = snakemake.output
analyse_job(snakemake.input.embeddings, list(snakemake.input.generations),
            {k: out[k] for k in ("intra", "inter", "random_pairs", "summary", "claims")},
            snakemake.params.cfg, snakemake.params.scale, snakemake.config["tracking"])
