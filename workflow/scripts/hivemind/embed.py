"""Embed every non-empty response with the configured sentence-embedding model."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.hivemind.jobs import embed_job  # noqa: E402

p = snakemake.params
embed_job(list(snakemake.input), snakemake.output[0], p.embedding, threads=snakemake.threads,
          device=p.device, tracking=snakemake.config["tracking"])
