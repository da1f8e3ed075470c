"""Figures: intra-model similarity per model, inter-model heatmap, response projections."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.hivemind.jobs import figures_job  # noqa: E402

i, out = snakemake.input, snakemake.output
figures_job(i.intra, i.random_pairs, i.summary, i.embeddings, list(i.generations),
            {k: out[k] for k in ("intra", "heatmap", "projection")}, snakemake.params.threshold,
            snakemake.params.n_prompts)
