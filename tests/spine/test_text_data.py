"""Corpus → tokenizer → shards → windows, and the errors a broken shard must raise."""
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.data.text import (TokenShards, documents, load_tokenizer, tokenize_shard, train_tokenizer,
                                write_manifest)
from pipeline.io import DataError

DOC = 4000  # data.text.doc_chars of config/config.yaml


@pytest.fixture(scope="module")
def kjv_shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("text")
    tok = train_tokenizer("kjv", "text", DOC, 300, 0.5, d / "tok.json")
    train, val = [], []
    for i in range(2):
        tokenize_shard("kjv", "text", DOC, i, 2, tok, 0.05, d / f"s{i}.train.parquet", d / f"s{i}.val.parquet")
        train.append(str(d / f"s{i}.train.parquet"))
        val.append(str(d / f"s{i}.val.parquet"))
    write_manifest(train, val, tok, d / "manifest.json")
    return d


def test_tokenizer_round_trip(kjv_shards):
    tok = load_tokenizer(kjv_shards / "tok.json")
    text = "In the beginning God created the heaven and the earth. Ünïcödé → ok"
    assert tok.decode(tok.encode(text).ids) == text
    assert tok.get_vocab_size() == 300


def test_shards_partition_the_corpus(kjv_shards):
    n_all = sum(1 for _ in documents("kjv", "text", DOC))
    n_parts = sum(1 for i in range(2) for _ in documents("kjv", "text", DOC, i, 2))
    assert n_all == n_parts == 1189  # KJV chapters


def test_windows_start_with_bos_and_are_deterministic(kjv_shards):
    shards = TokenShards(kjv_shards / "manifest.json", "train", verify_checksums=True)
    a = shards.sample(torch.Generator().manual_seed(3), 4, 16)
    b = shards.sample(torch.Generator().manual_seed(3), 4, 16)
    assert a.shape == (4, 17) and torch.equal(a, b)
    assert (a[:, 0] == shards.bos).all()
    assert torch.equal(shards.fixed(3, 16), shards.fixed(3, 16))


def test_user_corpus_from_parquet_and_text(tmp_path):
    pq.write_table(pa.table({"body": ["first document here", "second one"]}), tmp_path / "a.parquet")
    (tmp_path / "b.txt").write_text("a plain text document")
    docs = [t for _, t in documents(str(tmp_path), "body", DOC)]
    assert docs == ["first document here", "second one", "a plain text document"]
    with pytest.raises(DataError, match="no column 'text'"):
        list(documents(str(tmp_path), "text", DOC))
    with pytest.raises(DataError, match="data.text.corpus"):
        list(documents(str(tmp_path / "nowhere"), "text", DOC))


def test_corrupt_shard_names_the_file(kjv_shards, tmp_path):
    import json
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(kjv_shards, d)
    m = json.loads((kjv_shards / "manifest.json").read_text())
    for split in ("train", "val"):
        for e in m[split]:
            e["path"] = str(d / (e["path"].rsplit("/", 1)[1]))
    (d / "manifest.json").write_text(json.dumps(m))
    victim = d / "s1.train.parquet"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(DataError, match="s1.train.parquet"):
        TokenShards(d / "manifest.json", "train")
    victim.unlink()
    with pytest.raises(DataError, match="missing token shard: .*s1.train.parquet"):
        TokenShards(d / "manifest.json", "train")
