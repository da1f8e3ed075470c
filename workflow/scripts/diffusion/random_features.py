"""Rule diffusion_random_features: loss curves of the analytic random-features model for every n (NumPy, CPU)."""
from pipeline import job
from pipeline.studies.diffusion import STUDY
from pipeline.studies.diffusion.specs import RandomFeaturesSpec

spec = job.spec_from(RandomFeaturesSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec) as j:
    from pipeline.studies.diffusion.random_features import write_rf_curves

    write_rf_curves(spec.random_features, snakemake.output[0])
