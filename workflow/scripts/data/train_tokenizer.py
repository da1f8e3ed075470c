"""Rule train_tokenizer: the byte-level BPE tokenizer, trained on a bounded sample of the corpus."""
from pipeline import job

with job.start("data", snakemake=snakemake, params=dict(snakemake.params.items())):
    from pipeline.data.text import train_tokenizer

    p = snakemake.params
    train_tokenizer(p.corpus, p.column, p.doc_chars, p.vocab, p.sample_mb, snakemake.output[0])
