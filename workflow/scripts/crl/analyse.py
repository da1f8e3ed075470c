"""Rule crl_analyse: summary table and claims rows of the CRL depth study."""
from pathlib import Path

from pipeline import job
from pipeline.studies.crl import STUDY
from pipeline.studies.crl.specs import AnalyseSpec

spec = job.spec_from(AnalyseSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec.cfg) as j:
    from pipeline.studies.crl.analysis import analyse

    out = snakemake.output
    run_dirs = [str(Path(p).parent) for p in snakemake.input.runs]  # one run.json per run directory
    analyse(spec.cfg, run_dirs, out.summary, out.claims, spec.scale)
    for path in (out.summary, out.claims):
        j.tracker.log_artifact(path)
