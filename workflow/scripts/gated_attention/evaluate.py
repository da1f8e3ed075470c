"""Evaluate one trained gated-attention run."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.gated_attention.evaluate import evaluate  # noqa: E402

cfg = snakemake.config
evaluate({
    "weights": snakemake.input.weights, "metrics": snakemake.input.metrics, "data": {**snakemake.params.data, "path": snakemake.input.data},
    "model": snakemake.params.model, "eval": snakemake.params.eval, "gate": snakemake.wildcards.gate,
    "ffn": snakemake.wildcards.ffn, "threads": snakemake.threads, "device": snakemake.params.device,
    "out": snakemake.output[0], "tracking": cfg["tracking"], "wildcards": dict(snakemake.wildcards.items()),
})
