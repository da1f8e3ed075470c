"""Rule rlvr_teacher_data: the teacher's sampled solutions to training problems, the distillation data."""
import sys

from pipeline import job
from pipeline.studies.rlvr import STUDY
from pipeline.studies.rlvr.specs import TeacherDataSpec

spec = job.spec_from(TeacherDataSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, device=spec.device, params=spec) as j:
    from pipeline.studies.rlvr.distill import run_teacher_data  # torch (and transformers) output goes to the log

    i = snakemake.input
    summary = run_teacher_data(spec, i.train, i.tokenizer, snakemake.output[0], j.device)
    j.tracker.log_metrics(summary, step=0)
    print(f"teacher data: {summary}", file=sys.stderr)
