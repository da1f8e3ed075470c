"""Rule hivemind_analyse: intra-/inter-model similarity tables, random-pair baseline, summary and claims."""
from pipeline import job
from pipeline.studies.hivemind import STUDY
from pipeline.studies.hivemind.specs import AnalyseSpec

spec = job.spec_from(AnalyseSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec) as j:
    from pipeline.studies.hivemind.analysis import run_analysis

    out = {k: snakemake.output[k] for k in ("intra", "inter", "random_pairs", "summary", "claims")}
    claims = run_analysis(snakemake.input.embeddings, list(snakemake.input.generations), out, spec.cfg, spec.scale)
    for i, c in enumerate(claims):
        j.tracker.log_metrics({f"claim{i}.value": c.value, f"claim{i}.effect": c.effect}, step=0)
    j.tracker.log_artifact(out["claims"])
    j.tracker.log_artifact(out["summary"])
