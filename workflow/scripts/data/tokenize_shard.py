"""Tokenise one shard of the corpus into train/validation token files."""
import sys

sys.stderr = open(snakemake.log[0], "w")

from pipeline.data.text import tokenize_shard  # noqa: E402

p = snakemake.params
info = tokenize_shard(p.corpus, p.column, int(snakemake.wildcards.shard), p.num_shards,
                      snakemake.input.tokenizer, p.val_fraction, snakemake.output.train, snakemake.output.val)
print(info, file=sys.stderr)
