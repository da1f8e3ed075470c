"""Sample responses from one model of the population at each of its decoding settings."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.hivemind.jobs import generate_job  # noqa: E402

p = snakemake.params
generate_job(snakemake.input.prompts, snakemake.output[0], p.entry, p.decoding, p.generation, p.seed,
             threads=snakemake.threads, device=p.device, tracking=snakemake.config["tracking"])
