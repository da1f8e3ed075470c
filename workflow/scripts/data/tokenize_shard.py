"""Tokenise one shard of the corpus into train/validation token files."""
import sys

from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.data.text import tokenize_shard  # noqa: E402

p = snakemake.params
info = tokenize_shard(p.corpus, p.column, p.doc_chars, int(snakemake.wildcards.shard), p.num_shards,
                      snakemake.input.tokenizer, p.val_fraction, snakemake.output.train, snakemake.output.val)
print(info, file=sys.stderr)
