"""Assemble the claims table from every enabled study."""
import sys

sys.stderr = open(snakemake.log[0], "w")

from pipeline.claims import assemble  # noqa: E402

assemble(list(snakemake.input), snakemake.output.parquet, snakemake.output.md)
