"""Embed every non-empty response with the configured sentence-embedding model."""
import sys

sys.stderr = open(snakemake.log[0], "w")

from pipeline.studies.hivemind.jobs import embed_job  # noqa: E402

p = snakemake.params
embed_job(list(snakemake.input), snakemake.output[0], p.embedding, threads=snakemake.threads,
          device=p.device, tracking=p.tracking)
