"""Atomic, checked file I/O: every job output appears whole or not at all.

Parquet is the source of truth between jobs, so a reader must fail loudly (naming the
file) on a missing or corrupt file instead of returning a partial table.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq


class DataError(RuntimeError):
    """A data file is missing, corrupt or does not match its manifest."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet(table: pa.Table | Any, path: str | os.PathLike) -> Path:
    """Write a pyarrow Table, polars DataFrame, or list of row dicts atomically."""
    if isinstance(table, list):
        table = pa.Table.from_pylist(table)
    elif not isinstance(table, pa.Table):
        table = table.to_arrow()  # polars
    with atomic_path(path, ".parquet") as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """Read a whole Parquet file or raise DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing Parquet file: {path}")
    try:
        return pq.read_table(path, columns=columns)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"corrupt or unreadable Parquet file: {path} ({exc})") from exc


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    with atomic_path(path, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing JSON file: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"corrupt JSON file: {path} ({exc})") from exc


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
