"""Final evaluation of one CRL run: random pairs, the hard pair, and the maze oracle."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.runtime import setup  # noqa: E402
from pipeline.studies.crl.config import parse_run  # noqa: E402
from pipeline.studies.crl.evaluate import evaluate_run  # noqa: E402
from pipeline.tracking import Tracker  # noqa: E402

net, cfg = snakemake.params.net, snakemake.config
device = setup(snakemake.threads, snakemake.params.device)
wildcards = dict(snakemake.wildcards.items())
with Tracker("crl", "crl_evaluate", wildcards=wildcards, params={"run_cfg": snakemake.params.run_cfg, **wildcards},
             uri=cfg["tracking"]["uri"], enabled=cfg["tracking"]["enabled"]) as tracker:
    evaluate_run(parse_run(snakemake.params.run_cfg), snakemake.input.weights, net["depth"], net["width"],
                 int(snakemake.wildcards.seed), snakemake.output[0], device=device, tracker=tracker)
