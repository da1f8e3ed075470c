"""The RLVR figures: pass@k curves, coverage map, base perplexity of responses."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.rlvr.figures import draw_all  # noqa: E402

inp, out = snakemake.input, snakemake.output
draw_all({k: inp[k] for k in ("passk", "coverage", "perplexity")},
         {k: out[k] for k in ("passk", "coverage", "perplexity")}, snakemake.params.k_max)
