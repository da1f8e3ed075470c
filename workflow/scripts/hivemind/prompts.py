"""Build the study's prompt set (project set, blabber, optional Infinity-Chat)."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.hivemind.jobs import prompts_job  # noqa: E402

prompts_job(snakemake.output[0], snakemake.params.prompts, snakemake.params.seed)
