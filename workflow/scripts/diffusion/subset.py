"""Write the training subset of size n for one seed (nested or disjoint, as configured)."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.diffusion.data import write_subset  # noqa: E402

wc = snakemake.wildcards
write_subset(snakemake.input[0], snakemake.output[0], int(wc.df_n), int(wc.seed),
             snakemake.params.mode, int(snakemake.params.data_seed))
