"""A user's corpus in the formats it really comes in: one big text file, many files, a glob,
JSONL / JSON / Parquet records, gzip; and the error each bad file raises."""
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data.text import corpus_files, documents, kjv_path, tokenize_shard, train_tokenizer
from pipeline.io import DataError

DOC = 4000  # data.text.doc_chars of config/config.yaml
NUM_SHARDS = 2  # data.text.num_shards of config/config.yaml


def book(n_paragraphs: int = 400) -> str:
    """A realistic single-file corpus: KJV verses as wrapped lines, blank lines between paragraphs."""
    verses = [json.loads(line)["text"] for line in kjv_path().open()][: n_paragraphs * 3]
    paragraphs = [" ".join(verses[i:i + 3]) for i in range(0, len(verses), 3)]
    wrap = lambda p: "\n".join(p[i:i + 72] for i in range(0, len(p), 72))  # noqa: E731
    return "\n\n".join(wrap(p) for p in paragraphs) + "\n"


def test_one_text_file_fills_every_shard_at_the_default_num_shards(tmp_path):
    corpus = tmp_path / "book.txt"
    corpus.write_text(book())
    docs = [d for _, d in documents(str(corpus), "text", DOC)]
    assert len(docs) > 10 and all(DOC // 2 <= len(d) <= DOC for d in docs[:-1]) and len(docs[-1]) <= DOC
    words = lambda t: t.split()  # noqa: E731
    assert [w for d in docs for w in words(d)] == words(corpus.read_text())  # nothing lost or duplicated
    tok = train_tokenizer(str(corpus), "text", DOC, 300, 1, tmp_path / "tok.json")
    for shard in range(NUM_SHARDS):
        info = tokenize_shard(str(corpus), "text", DOC, shard, NUM_SHARDS, tok, 0.05,
                              tmp_path / f"s{shard}.train.parquet", tmp_path / f"s{shard}.val.parquet")
        assert info["documents"] >= len(docs) // NUM_SHARDS and info["train"]["rows"] > 1000


def test_a_paragraph_longer_than_doc_chars_is_cut(tmp_path):
    corpus = tmp_path / "one-line.txt"
    corpus.write_text("word " * 2000)  # 10,000 characters on one line, no blank line
    docs = [d for _, d in documents(str(corpus), "text", 1000)]
    assert len(docs) >= 10 and max(len(d) for d in docs) <= 1000
    assert sum(len(d.split()) for d in docs) == 2000


def test_many_files_globs_records_and_gzip(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.txt").write_text("first text file")
    with gzip.open(tmp_path / "a" / "two.txt.gz", "wt") as fh:
        fh.write("second text file, gzipped")
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"text": "jsonl record"}) + "\n\n" + json.dumps({"text": "another"}) + "\n")
    (tmp_path / "d.json").write_text(json.dumps([{"text": "json array record"}]))
    pq.write_table(pa.table({"text": ["parquet row", None]}), tmp_path / "e.parquet")
    (tmp_path / "notes.csv").write_text("ignored in a directory")
    every = [d for _, d in documents(str(tmp_path), "text", DOC)]
    assert every == ["first text file", "second text file, gzipped", "jsonl record", "another",
                     "json array record", "parquet row"]
    assert [d for _, d in documents(str(tmp_path / "a" / "*.txt*"), "text", DOC)] == every[:2]
    assert [d for _, d in documents(str(tmp_path / "**" / "*.txt"), "text", DOC)] == every[:1]
    parts = [sorted(i for i, _ in documents(str(tmp_path), "text", DOC, s, 2)) for s in range(2)]
    assert parts == [[0, 2, 4], [1, 3, 5]]  # numbered across files, dealt round-robin
    with pytest.raises(DataError, match=r"data\.text\.corpus: .* matches .*notes\.csv, which is not a corpus file"):
        corpus_files(str(tmp_path / "*"))


@pytest.mark.parametrize("name, content, message", [
    ("empty.txt", "", r"empty\.txt holds no text"),
    ("blank.txt", "\n\n  \n", r"blank\.txt holds no text"),
    ("rows.jsonl", '{"text": "ok"}\n{"body": "no text key"}\n', r"rows\.jsonl:2: no key 'text'"),
    ("rows.jsonl", '{"text": "ok"}\n{"text": 5}\n', r"rows\.jsonl:2: 'text' must be a string"),
    ("rows.jsonl", '{"text": "ok"}\nnot json\n', r"rows\.jsonl:2: not valid JSON"),
    ("rows.json", '[{"text": "ok"}, ["a list"]]', r"rows\.json: record 1: a record must be a JSON object"),
])
def test_a_bad_corpus_file_fails_naming_file_and_row(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        list(documents(str(tmp_path), "text", DOC))


def test_a_non_text_parquet_column_is_refused(tmp_path):
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "n.parquet")
    with pytest.raises(DataError, match=r"n\.parquet: column 'text' .* not text"):
        list(documents(str(tmp_path), "text", DOC))


@pytest.mark.slow
def test_user_files_are_inputs_and_a_bad_one_fails_only_its_job(tmp_path):
    """Snakemake for real, with a one-file corpus at the default num_shards and a raw GSM8K task
    file holding one unreadable answer: only the task's data job fails, naming file and row, and
    the corpus is tokenised; fixing the file and editing the corpus re-run exactly the jobs that
    read them; a corpus path that finds nothing stops the DAG build naming the key."""
    import yaml

    from pipeline.config import load_config
    from tests.conftest import SMOKE, snakemake

    corpus = tmp_path / "corpus" / "book.txt"
    corpus.parent.mkdir()
    corpus.write_text(book(200))
    gsm8k = tmp_path / "gsm8k.jsonl"
    rows = [{"question": f"Tom has {i} apples and buys {i} more. How many now?",
             "answer": f"{i} + {i} = <<{i}+{i}={2 * i}>>{2 * i}\n#### {2 * i}"} for i in range(30)]
    rows[2]["answer"] = "He has some apples.\n#### "  # an answer cut off: nothing to grade against
    gsm8k.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(SMOKE)
    cfg["data"]["text"].update(corpus=str(corpus), num_shards=NUM_SHARDS)
    cfg["studies"]["rlvr"]["task"].update(source="file", path=str(gsm8k))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    work = tmp_path / "work"
    targets = ["results/data/text/manifest.json", "results/rlvr/data/train.parquet"]
    run = snakemake(work, "--configfile", str(tmp_path / "c.yaml"), *targets, "--cores", "1", "--keep-going",
                    check=False)
    assert run.returncode != 0
    assert f"{gsm8k}:3: no answer can be read from 'answer'" in (work / "logs/rlvr/data.log").read_text()
    manifest = json.loads((work / targets[0]).read_text())
    assert len(manifest["train"]) == NUM_SHARDS and all(e["rows"] > 0 for e in manifest["train"])
    rows[2]["answer"] = "He has 4 apples.\n#### 4"
    gsm8k.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus.write_text(book(200) + "\n\nA new closing paragraph.\n")
    again = snakemake(work, "--configfile", str(tmp_path / "c.yaml"), *targets, "-n")
    assert {"train_tokenizer", "tokenize_shard", "text_manifest", "rlvr_data"} <= set(again.stdout.split()), again.stdout
    cfg["data"]["text"]["corpus"] = str(tmp_path / "nowhere" / "*.txt")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    bad = snakemake(work, "--configfile", str(tmp_path / "c.yaml"), targets[0], "-n", check=False)
    assert bad.returncode != 0 and "data.text.corpus" in bad.stdout + bad.stderr
