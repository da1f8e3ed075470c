"""Rule hivemind_generate: sample responses from one model of the population at each of its decoding settings."""
from pipeline.studies.hivemind import STUDY, hf_job_env

hf_job_env()  # before `pipeline.job` imports torch (and torch tqdm)

import time  # noqa: E402

from pipeline import job  # noqa: E402
from pipeline.io import read_parquet  # noqa: E402
from pipeline.studies.hivemind.specs import GenerateSpec  # noqa: E402

spec = job.spec_from(GenerateSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, device=spec.device, seed=spec.seed, params=spec) as j:
    from pipeline.studies.hivemind.generate import run_generation  # transformers' import-time output goes to the log

    t0 = time.perf_counter()
    table = run_generation(spec, read_parquet(snakemake.input.prompts), snakemake.output[0], j.device)
    seconds = time.perf_counter() - t0
    tokens = sum(table.column("n_tokens").to_pylist())
    empty = sum(table.column("empty").to_pylist())
    print(f"{spec.model['name']}: {table.num_rows} generations, {empty} empty, {tokens} tokens "
          f"in {seconds:.1f} s (incl. loading)", flush=True)
    j.tracker.log_metrics({"generations": table.num_rows, "empty": empty, "tokens": tokens,
                           "seconds_with_load": seconds}, step=0)
    j.tracker.log_artifact(snakemake.output[0])
