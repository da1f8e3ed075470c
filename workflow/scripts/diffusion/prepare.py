"""Write the study's image table (every image once, with the held-out split)."""
import sys

from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.diffusion.data import prepare_images  # noqa: E402

prepare_images(snakemake.params.data, snakemake.output[0])
print(f"images written to {snakemake.output[0]}", file=sys.stderr)
