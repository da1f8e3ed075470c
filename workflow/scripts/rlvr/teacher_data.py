"""The teacher's sampled solutions to training problems: the distillation data."""
import sys

from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.rlvr.distill import run_teacher_data  # noqa: E402

cfg, p = snakemake.config, snakemake.params
summary = run_teacher_data({
    "teacher_dir": p.teacher_dir, "train": snakemake.input.train, "tokenizer": snakemake.input.tokenizer,
    "checker": p.checker, "distill": p.distill, "batch_size": p.batch_size, "out": snakemake.output[0],
    "threads": snakemake.threads, "device": p.device, "tracking": cfg["tracking"],
})
print(f"teacher data: {summary}", file=sys.stderr)
