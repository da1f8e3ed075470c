"""Figures: intra-model similarity per model, inter-model heatmap, response projections."""
import sys

sys.stderr = open(snakemake.log[0], "w")

from pipeline.studies.hivemind.jobs import figures_job  # noqa: E402

i, out = snakemake.input, snakemake.output
figures_job(i.intra, i.random_pairs, i.summary, i.embeddings, list(i.generations),
            {k: out[k] for k in ("intra", "heatmap", "projection")}, snakemake.params.threshold,
            snakemake.params.n_prompts)
