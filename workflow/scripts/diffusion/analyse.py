"""τ_gen, τ_mem and their scaling with n from the evaluation rows; the claims rows."""
import sys

from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.diffusion.analysis import analyse  # noqa: E402

inp = snakemake.input
claims = analyse(eval_rows=inp.rows, rf_curves=inp.rf[0] if inp.rf else None, cfg=snakemake.params.cfg,
                 scale=snakemake.params.scale, out=dict(snakemake.output.items()))
for c in claims:
    print(f"{c.claim}: {c.verdict} ({c.metric} = {c.value:.3g}; {c.note})", file=sys.stderr)
