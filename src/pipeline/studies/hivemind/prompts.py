"""Open-ended prompts for the Hivemind study, from three sources with one table shape.

- `project`: the prompt set shipped with this package (`prompts.jsonl`), written for this
  project over the paper's taxonomy of open-ended queries; the category is a column.
- `blabber`: the 43 open conversation starters of the `blabber` package (public domain);
  its either/or and yes/no files are left out because they are not open-ended.
- `infinity_chat`: local copies of Infinity-Chat — the eval set (`liweijiang/infinite-chats-eval`,
  100 queries, column `query`) and/or the taxonomy set (`messages`, a list of turns or that
  list as a JSON string: the first user turn is the prompt; `categories`, a list, a JSON
  string or a plain label) — as Parquet, JSONL or JSON arrays (optionally gzipped); one file,
  a directory, a glob or a list of those. Prompts repeated within or across the files (or
  already in an earlier source) are dropped, and the count is reported in the job's log.

Every table has the columns prompt_id, source, category, prompt.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from pipeline.io import DataError, find_files, iter_records, record_format

# The paper's taxonomy of open-ended queries, as category labels of the project set; `personal`
# holds questions addressed to the model about itself (blabber's conversation starters).
TAXONOMY = (
    "creative_writing",
    "brainstorming",
    "philosophical",
    "speculative",
    "opinion",
    "advice",
    "alternative_genres",
    "personal",
)
SOURCES = ("project", "blabber", "infinity_chat")
COLUMNS = ("prompt_id", "source", "category", "prompt")
PROJECT_FILE = Path(__file__).with_name("prompts.jsonl")


def _table(rows: list[dict[str, str]]) -> pa.Table:
    return pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in COLUMNS})


def load_project(path: str | Path = PROJECT_FILE) -> pa.Table:
    """The project-authored prompt set; each line is {"id", "category", "prompt"}."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing prompt file: {path}")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            rows.append({"prompt_id": f"project/{rec['id']}", "source": "project",
                         "category": rec["category"], "prompt": rec["prompt"].strip()})
        except (json.JSONDecodeError, KeyError, AttributeError) as exc:
            raise DataError(f"{path}:{n}: expected a JSON object with id, category, prompt ({exc})") from exc
    return _table(rows)


def blabber_dir() -> Path:
    """The `blabber` package's data folder, found without importing the package."""
    spec = importlib.util.find_spec("blabber")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the `blabber` package is not installed (pip install blabber)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_blabber() -> pa.Table:
    """blabber's 43 open-ended conversation starters (data/open.txt), in file order."""
    path = blabber_dir() / "open.txt"
    if not path.is_file():
        raise DataError(f"missing blabber question file: {path}")
    lines = [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    return _table([{"prompt_id": f"blabber/{i:02d}", "source": "blabber", "category": "personal",
                    "prompt": s} for i, s in enumerate(lines, start=1)])


def _query_text(rec: Mapping[str, Any], column: str, where: str) -> str:
    if isinstance(rec.get(column), str):
        return rec[column]
    messages = rec.get("messages")
    if isinstance(messages, str):  # the taxonomy set's turns, stored as one JSON string
        try:
            messages = json.loads(messages)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: `messages` is a string but not JSON ({exc.msg})") from None
    if isinstance(messages, (list, tuple, np.ndarray)):  # the taxonomy set: the first user turn
        for m in messages:
            if isinstance(m, Mapping) and m.get("role") == "user" and isinstance(m.get("content"), str):
                return m["content"]
    raise DataError(f"{where}: neither a `{column}` string nor a user turn in `messages`")


def _category(rec: Mapping[str, Any]) -> str:
    cats = rec.get("categories", rec.get("category"))
    if isinstance(cats, str) and cats.lstrip().startswith("["):
        try:
            cats = json.loads(cats)
        except json.JSONDecodeError:
            pass
    if isinstance(cats, str) and cats:
        return cats
    if isinstance(cats, (list, tuple, np.ndarray)) and len(cats):
        first = cats[0]
        if isinstance(first, Mapping):  # {"category": ..., "subcategory": ...}
            first = first.get("category") or first.get("name") or next(iter(first.values()), "")
        return str(first) or "uncategorised"
    return "uncategorised"


def prompt_files(path: str | Sequence[str], key: str = "studies.hivemind.prompts.infinity_chat.path") -> list[Path]:
    """The prompt files a config value names (file, directory, glob, or a list of them)."""
    return find_files(path, key, lambda f: record_format(f) is not None,
                      "prompt file (.parquet, .jsonl or .json, optionally .gz)")


def _same(text: str) -> str:
    """What makes two prompts the same one: case and runs of whitespace do not count."""
    return " ".join(text.split()).casefold()


def load_file_prompts(path: str | Sequence[str], *, column: str, source: str, limit: int | None = None,
                      seed: int = 0, seen: set[str] | None = None) -> pa.Table:
    """Prompts from local Parquet/JSONL/JSON files' text `column` (or `messages`), without
    repeats (nor any prompt in `seen`); `limit` draws a seeded subset after de-duplication."""
    files = prompt_files(path)
    seen = set() if seen is None else set(seen)
    rows, dropped, total = [], 0, 0
    for fi, f in enumerate(files):
        before = total
        for i, (where, rec) in enumerate(iter_records(f)):
            total += 1
            if not isinstance(rec, Mapping):
                raise DataError(f"{where}: a prompt record must be an object, got {type(rec).__name__}")
            text = _query_text(rec, column, where).strip()
            if not text:
                continue
            if _same(text) in seen:
                dropped += 1
                continue
            seen.add(_same(text))
            rid = rec.get("id", rec.get("pid", i if len(files) == 1 else f"{fi}-{i}"))
            rows.append({"prompt_id": f"{source}/{rid}", "source": source,
                         "category": _category(rec), "prompt": text})
        if total == before:
            raise DataError(f"prompt file has no rows: {f}")
    print(f"{source}: {total} rows in {len(files)} file(s), {dropped} duplicate prompt(s) dropped, "
          f"{len(rows)} kept", file=sys.stderr)
    if limit is not None and limit < len(rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=limit, replace=False))
        rows = [rows[i] for i in keep]
    return _table(rows)


def load_infinity_chat(path: str | Sequence[str], limit: int | None = None, seed: int = 0,
                       seen: set[str] | None = None) -> pa.Table:
    """Infinity-Chat queries (column `query`, or the first user turn of `messages`)."""
    return load_file_prompts(path, column="query", source="infinity_chat", limit=limit, seed=seed, seen=seen)


def select(table: pa.Table, limit: int | None, seed: int) -> pa.Table:
    """A seeded subset of `limit` prompts, stratified round-robin over categories."""
    if limit is None or limit >= table.num_rows:
        return table
    rng = np.random.default_rng(seed)
    cats = table.column("category").to_pylist()
    by_cat: dict[str, list[int]] = {}
    for i, c in enumerate(cats):
        by_cat.setdefault(c, []).append(i)
    queues = [list(rng.permutation(idx)) for _, idx in sorted(by_cat.items())]
    picked: list[int] = []
    while len(picked) < limit:
        for q in queues:
            if q and len(picked) < limit:
                picked.append(int(q.pop(0)))
    return table.take(sorted(picked))


def build_prompt_set(cfg: Mapping[str, Any], seed: int) -> pa.Table:
    """All enabled sources, each cut to its `limit`; Infinity-Chat prompts already present are
    dropped (see load_file_prompts); raises on any other duplicate prompt text or id."""
    parts = []
    if cfg["project"]["enabled"]:
        parts.append(select(load_project(), cfg["project"]["limit"], seed))
    if cfg["blabber"]["enabled"]:
        parts.append(select(load_blabber(), cfg["blabber"]["limit"], seed))
    ic = cfg["infinity_chat"]
    if ic["enabled"]:
        if not ic["path"]:
            raise DataError("studies.hivemind.prompts.infinity_chat.enabled is true but no path is set")
        earlier = {_same(t) for part in parts for t in part.column("prompt").to_pylist()}
        parts.append(load_infinity_chat(ic["path"], ic["limit"], seed, seen=earlier))
    if not parts:
        raise DataError("studies.hivemind.prompts: every prompt source is disabled")
    table = pa.concat_tables(parts)
    validate(table)
    return table


def validate(table: pa.Table, taxonomy: Sequence[str] | None = None) -> None:
    """Unique ids and texts, non-empty prompts; with `taxonomy`, categories must belong to it."""
    ids = table.column("prompt_id").to_pylist()
    texts = [t.casefold() for t in table.column("prompt").to_pylist()]
    if len(set(ids)) != len(ids):
        raise DataError("duplicate prompt ids in the prompt set")
    if len(set(texts)) != len(texts):
        dup = sorted({t for t in texts if texts.count(t) > 1})[:3]
        raise DataError(f"duplicate prompts in the prompt set: {dup}")
    if any(not t.strip() for t in texts):
        raise DataError("empty prompt in the prompt set")
    if taxonomy is not None:
        bad = sorted(set(table.column("category").to_pylist()) - set(taxonomy))
        if bad:
            raise DataError(f"categories outside the taxonomy: {bad}")
