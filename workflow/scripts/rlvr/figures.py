"""Rule rlvr_figures: pass@k curves, coverage map, base perplexity of responses."""
from pipeline import job
from pipeline.studies.rlvr import STUDY
from pipeline.studies.rlvr.specs import FiguresSpec

spec = job.spec_from(FiguresSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec) as j:
    from pipeline.studies.rlvr.figures import draw_all

    inp, out = snakemake.input, snakemake.output
    figures = {k: out[k] for k in ("passk", "coverage", "perplexity")}
    draw_all({k: inp[k] for k in ("passk", "coverage", "perplexity")}, figures, spec.k_max)
    for path in figures.values():
        j.tracker.log_artifact(path)
