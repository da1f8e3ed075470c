"""Every figure of the diffusion study."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.studies.diffusion.figures import make_figures  # noqa: E402

inp, params = snakemake.input, snakemake.params
make_figures(evals=inp.evals, timescales=inp.timescales, fits=inp.fits,
             rf_timescales=inp.rf_timescales or None, rf_curves=inp.rf_curves[0] if inp.rf_curves else None,
             early=inp.early, late=inp.late, subset=inp.subset, early_step=params.early_step,
             late_step=params.late_step, cfg=params.cfg, out=dict(snakemake.output.items()))
