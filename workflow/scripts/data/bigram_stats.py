"""Rule bigram_stats: the corpus's character bigram counts, for the synthetic Bigram-Backcopy source."""
from pipeline import job

with job.start("data", snakemake=snakemake, params=dict(snakemake.params.items())):
    from pipeline.data.synthetic import bigram_stats

    p = snakemake.params
    bigram_stats(p.corpus, p.column, p.sample_mb, snakemake.output[0], p.doc_chars)
