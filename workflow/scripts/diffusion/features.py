"""Rule diffusion_features: the small classifier whose features define the Fréchet distance (trained on the CPU)."""
from pipeline import job
from pipeline.studies.diffusion import STUDY
from pipeline.studies.diffusion.specs import FeaturesSpec

spec = job.spec_from(FeaturesSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, seed=spec.features["seed"], params=spec) as j:
    from pipeline.studies.diffusion.feature_net import train_feature_net

    out = snakemake.output
    meta = train_feature_net(snakemake.input[0], out.weights, out.meta, spec.features)
    print(f"feature classifier: {meta}")
