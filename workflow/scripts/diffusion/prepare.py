"""Rule diffusion_data: the study's image table (every image once, with the held-out split)."""
from pipeline import job
from pipeline.studies.diffusion import STUDY
from pipeline.studies.diffusion.specs import DataSpec

spec = job.spec_from(DataSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec) as j:
    from pipeline.studies.diffusion.data import prepare_images

    prepare_images(spec.data, snakemake.output[0])
    print(f"images written to {snakemake.output[0]}")
