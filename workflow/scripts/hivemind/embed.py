"""Rule hivemind_embed: embed every non-empty response with the configured sentence-embedding model."""
from pipeline.studies.hivemind import STUDY, hf_job_env

hf_job_env()  # before `pipeline.job` imports torch (and torch tqdm)

import time  # noqa: E402

from pipeline import job  # noqa: E402
from pipeline.studies.hivemind.specs import EmbedSpec  # noqa: E402

spec = job.spec_from(EmbedSpec, snakemake.params.spec)
with job.start(STUDY, snakemake=snakemake, device=spec.device, seed=0, params=spec) as j:
    from pipeline.studies.hivemind.embed import embed_generations  # sentence-transformers' output goes to the log

    e = spec.embedding
    t0 = time.perf_counter()
    table = embed_generations(list(snakemake.input), snakemake.output[0], model=e["model"], backend=e["backend"],
                              batch_size=e["batch_size"], device=j.device)
    j.tracker.log_metrics({"responses": table.num_rows, "seconds": time.perf_counter() - t0}, step=0)
