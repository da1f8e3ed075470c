"""Evaluate one exported checkpoint: f_mem, Fréchet distance, train/held-out loss."""
import sys

from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.runtime import setup  # noqa: E402
from pipeline.studies.diffusion.evaluate import evaluate_checkpoint  # noqa: E402
from pipeline.tracking import Tracker  # noqa: E402

wc, inp, out, params = snakemake.wildcards, snakemake.input, snakemake.output, snakemake.params
device = setup(snakemake.threads, params.device)
n, seed, step = int(wc.df_n), int(wc.seed), int(wc.df_step)
with Tracker("diffusion", "diffusion_evaluate", wildcards={"n": n, "seed": seed, "step": step}, params=params.cfg,
             uri=snakemake.config["tracking"]["uri"], enabled=snakemake.config["tracking"]["enabled"]) as tracker:
    row = evaluate_checkpoint(weights=params.weights, train_result=inp.result, subset=inp.subset, images=inp.images,
                              feature_weights=inp.feature_weights, feature_meta=inp.feature_meta, cfg=params.cfg,
                              n=n, seed=seed, step=step, out_row=out.row, out_samples=out.samples, device=device)
    tracker.log_metrics({k: v for k, v in row.items() if isinstance(v, float)}, step)
print(row, file=sys.stderr)
