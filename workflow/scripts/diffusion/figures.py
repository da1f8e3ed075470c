"""Rule diffusion_figures: every figure of the diffusion study."""
from pipeline import job
from pipeline.studies.diffusion import STUDY
from pipeline.studies.diffusion.specs import FiguresSpec

spec = job.spec_from(FiguresSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec.cfg) as j:
    from pipeline.studies.diffusion.figures import make_figures

    i, out = snakemake.input, snakemake.output
    make_figures(evals=i.evals, timescales=i.timescales, fits=i.fits, rf_timescales=i.rf_timescales or None,
                 rf_curves=i.rf_curves[0] if i.rf_curves else None, early=i.early, late=i.late, subset=i.subset,
                 early_step=spec.early_step, late_step=spec.late_step, cfg=spec.cfg, out=dict(out.items()))
    for path in out:
        j.tracker.log_artifact(path)
