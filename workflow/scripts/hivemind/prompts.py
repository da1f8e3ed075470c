"""Rule hivemind_prompts: the study's prompt set (project set, blabber, optional Infinity-Chat)."""
from pipeline import job
from pipeline.io import write_parquet
from pipeline.studies.hivemind import STUDY
from pipeline.studies.hivemind.specs import PromptsSpec

spec = job.spec_from(PromptsSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec) as j:
    from pipeline.studies.hivemind.prompts import build_prompt_set

    table = build_prompt_set(spec.prompts, spec.seed)
    write_parquet(table, snakemake.output[0])
    j.tracker.log_metrics({"prompts": table.num_rows}, step=0)
