"""Build the study's prompt set (project set, blabber, optional Infinity-Chat)."""
import sys

sys.stderr = open(snakemake.log[0], "w")

from pipeline.studies.hivemind.jobs import prompts_job  # noqa: E402

prompts_job(snakemake.output[0], snakemake.params.prompts, snakemake.params.seed)
