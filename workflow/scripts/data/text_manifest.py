"""Rule text_manifest: the manifest (rows, checksums) of all token shards."""
from pipeline import job

with job.start("data", snakemake=snakemake) as j:
    from pipeline.data.text import write_manifest

    i = snakemake.input
    m = write_manifest(list(i.train), list(i.val), i.tokenizer, snakemake.output[0])
    print(m["tokens"], flush=True)
    j.tracker.log_metrics({f"{split}_tokens": n for split, n in m["tokens"].items()}, step=0)
    j.tracker.log_artifact(snakemake.output[0])
