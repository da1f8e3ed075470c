"""Rule rlvr_evaluate: sample one model n times per held-out problem; counts, samples and base likelihoods."""
import sys

from pipeline import job
from pipeline.studies.rlvr import STUDY
from pipeline.studies.rlvr.specs import EvalSpec

spec = job.spec_from(EvalSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, device=spec.device, params=spec) as j:
    from pipeline.studies.rlvr.evaluate import run_eval  # torch (and transformers) output goes to the log

    name, i, out = snakemake.wildcards.rlvr_model, snakemake.input, snakemake.output
    summary = run_eval(spec, i.heldout, i.tokenizer, out.counts, out.samples, j.device, name=name)
    j.tracker.log_metrics(summary, step=0)
    print(f"{name}: {summary}", file=sys.stderr)
