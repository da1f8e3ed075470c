"""Assemble the claims table from every enabled study."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.claims import assemble  # noqa: E402

assemble(list(snakemake.input), snakemake.output.parquet, snakemake.output.md)
