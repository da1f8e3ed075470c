"""Rule ga_evaluate: evaluate one trained gated-attention run."""
from pipeline import job
from pipeline.studies.gated_attention import STUDY
from pipeline.studies.gated_attention.specs import EvalSpec

spec = job.spec_from(EvalSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, device=spec.device, seed=0, params=spec) as j:
    from pipeline.studies.gated_attention.evaluate import evaluate  # DeepSpeed's import-time output goes to the log

    i = snakemake.input
    table = evaluate(spec, i.weights, i.metrics, i.data, snakemake.output[0], j.device)
    scalars = {r["metric"]: r["value"] for r in table.to_pylist() if r["layer"] == -1 and r["window"] == -1}
    j.tracker.log_metrics(scalars, step=0)
