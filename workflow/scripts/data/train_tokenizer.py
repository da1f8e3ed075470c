"""Train the byte-level BPE tokenizer on a bounded sample of the corpus."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.data.text import train_tokenizer  # noqa: E402

p = snakemake.params
train_tokenizer(p.corpus, p.column, p.doc_chars, p.vocab, p.sample_mb, snakemake.output[0])
