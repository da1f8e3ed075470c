"""Rule hivemind_figures: intra-model similarity per model, inter-model heatmap, response projections."""
from pipeline import job
from pipeline.studies.hivemind import STUDY
from pipeline.studies.hivemind.specs import FiguresSpec

spec = job.spec_from(FiguresSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec) as j:
    from pipeline.studies.hivemind.figures import make_figures

    i, out = snakemake.input, snakemake.output
    figures = {k: out[k] for k in ("intra", "heatmap", "projection")}
    make_figures(i.intra, i.random_pairs, i.summary, i.embeddings, list(i.generations), figures, spec.threshold,
                 spec.n_prompts)
    for path in figures.values():
        j.tracker.log_artifact(path)
