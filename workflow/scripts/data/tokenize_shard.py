"""Rule tokenize_shard: one shard of the corpus as train/validation token files."""
from pipeline import job

with job.start("data", snakemake=snakemake, params=dict(snakemake.params.items())) as j:
    from pipeline.data.text import tokenize_shard

    p, out = snakemake.params, snakemake.output
    info = tokenize_shard(p.corpus, p.column, p.doc_chars, int(snakemake.wildcards.shard), p.num_shards,
                          snakemake.input.tokenizer, p.val_fraction, out.train, out.val)
    print(info, flush=True)
    j.tracker.log_metrics({"documents": info["documents"], "train_tokens": info["train"]["rows"],
                           "val_tokens": info["val"]["rows"]}, step=0)
