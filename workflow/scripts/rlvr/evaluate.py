"""Sample one model n times per held-out problem; counts, samples and base likelihoods."""
import sys

from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.rlvr.evaluate import run_eval  # noqa: E402

cfg, p = snakemake.config, snakemake.params
summary = run_eval({
    "name": snakemake.wildcards.rlvr_model, "model_dir": p.model_dir, "base_dir": p.base_dir,
    "heldout": snakemake.input.heldout, "tokenizer": snakemake.input.tokenizer, "eval": p.eval,
    "checker": p.checker, "counts_out": snakemake.output.counts, "samples_out": snakemake.output.samples,
    "threads": snakemake.threads, "device": p.device, "tracking": cfg["tracking"],
    "wildcards": {"model": snakemake.wildcards.rlvr_model},
})
print(f"{snakemake.wildcards.rlvr_model}: {summary}", file=sys.stderr)
