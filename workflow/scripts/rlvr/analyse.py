"""pass@k curves, coverage, base perplexity of responses, and the RLVR claims rows."""
import sys

from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.rlvr.analysis import run_analysis  # noqa: E402

p, inp, out = snakemake.params, snakemake.input, snakemake.output
claims = run_analysis(dict(zip(p.models, inp.counts)), dict(zip(p.models, inp.samples)), k_max=p.k_max,
                      algorithms=p.algorithms, subset_threshold=p.subset_threshold, scale=p.scale,
                      out={k: out[k] for k in ("claims", "passk", "coverage", "perplexity")})
for c in claims:
    print(f"{c.claim}: {c.verdict} (effect {c.effect:.4g}) {c.note}", file=sys.stderr)
