"""Rule crl_figures: time at goal vs depth, learning curves, depth vs width (they depend on the inputs alone)."""
from pathlib import Path

from pipeline import job
from pipeline.studies.crl import STUDY

with job.start(STUDY, snakemake=snakemake) as j:
    from pipeline.studies.crl.figures import make_figures

    run_dirs = [str(Path(p).parent) for p in snakemake.input.metrics]  # one metrics.parquet per run directory
    figures = dict(snakemake.output.items())
    make_figures(snakemake.input.summary, run_dirs, figures)
    for path in figures.values():
        j.tracker.log_artifact(path)
