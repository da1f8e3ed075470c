"""Summary table and claims rows of the CRL depth study."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.crl.analysis import analyse  # noqa: E402

analyse(snakemake.params.cfg, snakemake.params.run_dirs, snakemake.output.summary, snakemake.output.claims,
        snakemake.params.scale)
