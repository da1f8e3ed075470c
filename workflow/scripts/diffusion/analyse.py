"""Rule diffusion_analyse: τ_gen, τ_mem and their scaling with n from the evaluation rows; the claims."""
from pipeline import job
from pipeline.studies.diffusion import STUDY
from pipeline.studies.diffusion.specs import AnalyseSpec

spec = job.spec_from(AnalyseSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec.cfg) as j:
    from pipeline.studies.diffusion.analysis import analyse

    i, out = snakemake.input, snakemake.output
    claims = analyse(eval_rows=i.rows, rf_curves=i.rf[0] if i.rf else None, cfg=spec.cfg, scale=spec.scale,
                     out=dict(out.items()))
    for c in claims:
        print(f"{c.claim}: {c.verdict} ({c.metric} = {c.value:.3g}; {c.note})")
    j.tracker.log_artifact(out.claims)
