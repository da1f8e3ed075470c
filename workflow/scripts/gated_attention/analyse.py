"""Rule ga_analyse: claims and figures of the gated-attention study."""
from pipeline import job
from pipeline.studies.gated_attention import STUDY
from pipeline.studies.gated_attention.specs import AnalyseSpec

spec = job.spec_from(AnalyseSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec.cfg) as j:
    from pipeline.studies.gated_attention.analysis import analyse

    out = snakemake.output
    figures = {k: out[k] for k in ("loss", "sink", "activation", "context")}
    analyse(list(snakemake.input.evals), list(snakemake.input.metrics), spec.cfg, spec.scale, out.claims, figures)
    for path in [out.claims, *figures.values()]:
        j.tracker.log_artifact(path)
