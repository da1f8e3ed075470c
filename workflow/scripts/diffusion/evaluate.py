"""Rule diffusion_evaluate: one exported checkpoint's f_mem, Fréchet distance, train/held-out loss."""
from pipeline import job
from pipeline.studies.diffusion import STUDY
from pipeline.studies.diffusion.specs import EvalSpec, weights_file

spec = job.spec_from(EvalSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, device=spec.device, seed=spec.eval_seed, params=spec) as j:
    from pipeline.studies.diffusion.evaluate import evaluate_checkpoint

    i, o = snakemake.input, snakemake.output
    row = evaluate_checkpoint(spec, weights=weights_file(i.weights, spec.step), train_result=i.result, subset=i.subset,
                              images=i.images, feature_weights=i.feature_weights, feature_meta=i.feature_meta,
                              out_row=o.row, out_samples=o.samples, device=j.device)
    j.tracker.log_metrics({k: v for k, v in row.items() if isinstance(v, float)}, spec.step)
    print(row)
