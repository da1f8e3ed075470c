"""Train the small classifier whose features define the Fréchet distance."""
import sys

from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.runtime import setup  # noqa: E402
from pipeline.studies.diffusion.feature_net import train_feature_net  # noqa: E402

setup(snakemake.threads, "cpu", seed=int(snakemake.params.cfg["seed"]))
meta = train_feature_net(snakemake.input[0], snakemake.output.weights, snakemake.output.meta, snakemake.params.cfg)
print(f"feature classifier: {meta}", file=sys.stderr)
