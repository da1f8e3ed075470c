"""Write the RLVR task's training and held-out problems and its character table."""
import sys

from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.rlvr.task import write_task  # noqa: E402

out = snakemake.output
n_train, n_held = write_task(snakemake.params.task, out.train, out.heldout, out.tokenizer)
print(f"rlvr task: {n_train} training and {n_held} held-out problems", file=sys.stderr)
