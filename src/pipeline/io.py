"""Atomic, checked file I/O: every job output appears whole or not at all.

Parquet is the source of truth between jobs, so a reader must fail loudly (naming the
file) on a missing or corrupt file instead of returning a partial table.
"""
from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq


class DataError(RuntimeError):
    """A data file is missing, corrupt or does not match its manifest."""


PLACEHOLDER = "/path/to/"


def is_placeholder(value: Any) -> bool:
    """A preset's stand-in for the user's own data (`/path/to/…`): a dry run builds the DAG without
    it (no job count depends on the data), a real run stops at it, naming its key."""
    values = [value] if isinstance(value, (str, os.PathLike)) else (value or [])
    return any(str(v).startswith(PLACEHOLDER) for v in values)


def missing(key: str, what: str, value: Any) -> DataError:
    """The error for a config value that finds no data, saying so when it is still a preset's placeholder."""
    hint = ": it is the preset's placeholder, set it to your data" if is_placeholder(value) else ""
    return DataError(f"{key}: no {what} found at {value!r}{hint}")


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


def write_parquet(table: pa.Table | list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write a pyarrow Table or a list of row dicts atomically."""
    if isinstance(table, list):
        table = pa.Table.from_pylist(table)
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


RECORD_SUFFIXES = (".jsonl", ".json", ".parquet")


def record_format(path: str | os.PathLike) -> str | None:
    """'.jsonl', '.json' or '.parquet' for a record file (JSON may end in .gz), else None."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        return next((s for s in (".jsonl", ".json") if name.endswith(s)), None)
    return next((s for s in RECORD_SUFFIXES if name.endswith(s)), None)


def open_text(path: str | os.PathLike) -> IO[str]:
    """A text file, gunzipped on the fly when it ends in .gz; undecodable bytes replaced."""
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def iter_records(path: str | os.PathLike) -> Iterator[tuple[str, Any]]:
    """(where, record) for each record of a JSON Lines file, a JSON array, or a Parquet file.

    `where` ("file:line", "file: record i", "file: row i") is what an error about that record
    should name. JSON is streamed line by line (an array is read whole); Parquet by batches.
    """
    path = Path(path)
    kind = record_format(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    if kind is None:
        raise DataError(f"{path}: want .jsonl, .json (an array or one object per line) or .parquet")
    if kind == ".parquet":
        try:
            pf = pq.ParquetFile(path)
            i = 0
            for batch in pf.iter_batches(batch_size=1024):
                for rec in batch.to_pylist():
                    yield f"{path}: row {i}", rec
                    i += 1
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"corrupt or unreadable Parquet file: {path} ({exc})") from exc
        return
    with open_text(path) as fh:
        if fh.read(256).lstrip()[:1] == "[":
            fh.seek(0)
            try:
                rows = json.load(fh)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: not valid JSON ({exc})") from None
            for i, rec in enumerate(rows):
                yield f"{path}: record {i}", rec
            return
        fh.seek(0)
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            yield f"{path}:{lineno}", rec


def find_files(spec: str | os.PathLike | Sequence[str | os.PathLike], key: str, accept: Callable[[Path], bool], want: str) -> list[Path]:
    """The files a config value names: a file, a directory (searched recursively for accepted
    files), a glob (`**` recursive), or a list of those; sorted within each entry, so the order
    does not depend on the file system. A named or matched file that `accept` refuses, or
    nothing found, raises DataError naming `key` (`want` says what is accepted)."""
    files: list[Path] = []
    for entry in map(str, [spec] if isinstance(spec, (str, os.PathLike)) else spec):
        p = Path(entry).expanduser()
        if any(c in entry for c in "*?["):
            found = sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
            odd = [f for f in found if not accept(f)]
            if odd:
                raise DataError(f"{key}: {entry!r} matches {odd[0]}, which is not a {want}")
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and accept(f))
        elif p.is_file():
            if not accept(p):
                raise DataError(f"{key}: {entry!r} is not a {want}")
            found = [p]
        else:
            found = []
        if not found:
            raise missing(key, want, entry)
        files.extend(found)
    return files
