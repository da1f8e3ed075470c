"""Loss curves of the analytic random-features model for every n."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.runtime import setup  # noqa: E402
from pipeline.studies.diffusion.random_features import write_rf_curves  # noqa: E402

setup(snakemake.threads, "cpu")
write_rf_curves(snakemake.params.cfg, snakemake.output[0])
