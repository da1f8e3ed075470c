"""Rule diffusion_subset: the training subset of size n for one seed (nested or disjoint, as configured)."""
from pipeline import job
from pipeline.studies.diffusion import STUDY
from pipeline.studies.diffusion.specs import SubsetSpec

spec = job.spec_from(SubsetSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, params=spec) as j:
    from pipeline.studies.diffusion.data import write_subset

    write_subset(snakemake.input[0], snakemake.output[0], spec.n, spec.seed, spec.mode, spec.data_seed)
