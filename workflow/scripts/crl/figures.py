"""The CRL study's figures: time at goal vs depth, learning curves, depth vs width."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.crl.figures import make_figures  # noqa: E402

make_figures(snakemake.input.summary, snakemake.params.run_dirs, dict(snakemake.output.items()))
