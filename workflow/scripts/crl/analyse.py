"""Summary table and claims rows of the CRL depth study."""
import sys

sys.stderr = open(snakemake.log[0], "w")

from pipeline.studies.crl.analysis import analyse  # noqa: E402

analyse(snakemake.params.cfg, snakemake.params.run_dirs, snakemake.output.summary, snakemake.output.claims,
        snakemake.params.scale)
