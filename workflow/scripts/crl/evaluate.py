"""Rule crl_evaluate: final evaluation of one CRL run (random pairs, the hard pair, and the maze oracle)."""
from pipeline import job
from pipeline.studies.crl import STUDY
from pipeline.studies.crl.specs import RunSpec

spec = job.spec_from(RunSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, device=spec.device, seed=spec.seed, params=spec) as j:
    from pipeline.studies.crl.evaluate import evaluate_run

    evaluate_run(spec.run_config(), snakemake.input.weights, spec.depth, spec.width, spec.seed, snakemake.output[0],
                 device=j.device, tracker=j.tracker)
