"""Rule rlvr_analyse: pass@k curves, coverage, base perplexity of responses, and the RLVR claims rows."""
import sys

from pipeline import job
from pipeline.studies.rlvr import STUDY
from pipeline.studies.rlvr.specs import AnalyseSpec

spec = job.spec_from(AnalyseSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec) as j:
    from pipeline.studies.rlvr.analysis import run_analysis

    inp, out = snakemake.input, snakemake.output
    tables = {k: out[k] for k in ("claims", "passk", "coverage", "perplexity")}
    claims = run_analysis(dict(zip(spec.models, inp.counts)), dict(zip(spec.models, inp.samples)), k_max=spec.k_max,
                          algorithms=spec.algorithms, subset_threshold=spec.subset_threshold, scale=spec.scale,
                          out=tables)
    for c in claims:
        print(f"{c.claim}: {c.verdict} (effect {c.effect:.4g}) {c.note}", file=sys.stderr)
    for path in tables.values():
        j.tracker.log_artifact(path)
