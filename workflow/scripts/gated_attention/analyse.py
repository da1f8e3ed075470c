"""Claims and figures of the gated-attention study."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.gated_attention.analysis import analyse  # noqa: E402

out = snakemake.output
analyse(list(snakemake.input.evals), list(snakemake.input.metrics), snakemake.params.cfg, snakemake.params.scale,
        out.claims, {k: out[k] for k in ("loss", "sink", "activation", "context")}, snakemake.config["tracking"])
