# Text corpus → tokenizer → token shards (parallel jobs) → manifest.
from pipeline.data.text import declared_corpus_files

TEXT = config["data"]["text"]
TEXT_DIR = "results/data/text"
# An input function, so the corpus is looked up only when a rule that reads it is in the DAG (a bad path then
# stops the DAG build, naming it); a run whose studies never tokenise the corpus does not need it.
TEXT_INPUTS = user_data("data.text.corpus", TEXT["corpus"], lambda wc: declared_corpus_files(TEXT["corpus"]))


rule train_tokenizer:
    input:
        corpus=TEXT_INPUTS,
    output:
        f"{TEXT_DIR}/tokenizer.json",
    params:
        corpus=TEXT["corpus"],
        column=TEXT["text_column"],
        doc_chars=TEXT["doc_chars"],
        vocab=TEXT["vocab_size"],
        sample_mb=TEXT["tokenizer_sample_mb"],
    log:
        "logs/data/train_tokenizer.log",
    script:
        "../scripts/data/train_tokenizer.py"


rule tokenize_shard:
    input:
        corpus=TEXT_INPUTS,
        tokenizer=f"{TEXT_DIR}/tokenizer.json",
    output:
        train=f"{TEXT_DIR}/shard{{shard}}.train.parquet",
        val=f"{TEXT_DIR}/shard{{shard}}.val.parquet",
    params:
        corpus=TEXT["corpus"],
        column=TEXT["text_column"],
        doc_chars=TEXT["doc_chars"],
        num_shards=TEXT["num_shards"],
        val_fraction=TEXT["val_fraction"],
    wildcard_constraints:
        shard=r"\d+",
    log:
        "logs/data/tokenize_shard{shard}.log",
    script:
        "../scripts/data/tokenize_shard.py"


rule text_manifest:
    input:
        tokenizer=f"{TEXT_DIR}/tokenizer.json",
        train=expand(f"{TEXT_DIR}/shard{{i}}.train.parquet", i=range(TEXT["num_shards"])),
        val=expand(f"{TEXT_DIR}/shard{{i}}.val.parquet", i=range(TEXT["num_shards"])),
    output:
        f"{TEXT_DIR}/manifest.json",
    log:
        "logs/data/text_manifest.log",
    script:
        "../scripts/data/text_manifest.py"


# Character bigram statistics of the corpus: the synthetic Bigram-Backcopy source draws from them
# (seconds on a bounded prefix; the corpus is never tokenised for it).
rule bigram_stats:
    input:
        corpus=TEXT_INPUTS,
    output:
        "results/data/bigram/stats.json",
    params:
        corpus=TEXT["corpus"],
        column=TEXT["text_column"],
        sample_mb=TEXT["bigram_sample_mb"],
        doc_chars=TEXT["doc_chars"],
    log:
        "logs/data/bigram_stats.log",
    script:
        "../scripts/data/bigram_stats.py"
