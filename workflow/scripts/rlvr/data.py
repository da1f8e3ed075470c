"""Rule rlvr_data: the RLVR task's training and held-out problems and its character table."""
import sys

from pipeline import job
from pipeline.studies.rlvr import STUDY
from pipeline.studies.rlvr.specs import DataSpec

spec = job.spec_from(DataSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec) as j:
    from pipeline.studies.rlvr.task import write_task

    out = snakemake.output
    n_train, n_held = write_task(spec.task, out.train, out.heldout, out.tokenizer)
    print(f"rlvr task: {n_train} training and {n_held} held-out problems", file=sys.stderr)
