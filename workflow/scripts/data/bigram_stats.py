"""Count the corpus's character bigrams for the synthetic Bigram-Backcopy source."""
from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.data.synthetic import bigram_stats  # noqa: E402

p = snakemake.params
bigram_stats(p.corpus, p.column, p.sample_mb, snakemake.output[0], p.doc_chars)
