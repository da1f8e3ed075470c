"""The verifiable task: seeded multi-term addition, or a user's (prompt, answer) file.

A generated problem is "ab+cd+ef=" with zero-padded terms; the reference completion is the
zero-padded sum (or, with `cot`, the running sums "46+56=102"). Difficulty is the number of
terms and digits. Held-out and training problems are disjoint by construction. A user task
is a JSONL or Parquet file with `prompt` and `answer` (and optionally `solution`, the SFT
target) columns, checked by the same `Checker`.

The checker is exact but format-tolerant: "102", "0102", " 102", "+102", "102.0", "1,020"
and "204/2" are all the number 102. `strict` mode (for the character model) reads the text
after the last "=" and requires it to be one number; `last_number` mode (for free-form
LM output such as GSM8K) reads a \\boxed{...}, the text after "####", or the last number.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.io import DataError, read_parquet, write_parquet

CHECKER_MODES = ("strict", "last_number")
_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_BOXED_RE = re.compile(r"\\boxed\{([^{}]*)\}")


def parse_number(text: str) -> Fraction | None:
    """The exact value of `text` if it is one number (with the tolerated decorations), else None."""
    s = text.strip().rstrip(".").strip()
    if s.startswith("$"):
        s = s[1:].strip()
    if not re.fullmatch(_NUMBER, s):
        return None
    try:
        value = Fraction(s.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None
    return value


def _normalise_text(text: str) -> str:
    return " ".join(text.strip().rstrip(".").split()).casefold()


@dataclass(frozen=True)
class Checker:
    """Exact answer checker; `check(completion, answer)` → bool."""

    mode: str = "strict"

    def __post_init__(self) -> None:
        if self.mode not in CHECKER_MODES:
            raise ValueError(f"checker mode must be one of {CHECKER_MODES}, got {self.mode!r}")

    def extract(self, completion: str, numeric: bool = True) -> str | None:
        """The part of `completion` that holds the final answer (None if there is none).

        For a non-numeric reference answer (`numeric=False`) `last_number` mode falls back to
        the whole completion when there is no \\boxed{} or "####" marker.
        """
        if self.mode == "strict":
            return completion.rsplit("=", 1)[-1]
        boxed = _BOXED_RE.findall(completion)
        if boxed:
            return boxed[-1]
        if "####" in completion:
            return completion.rsplit("####", 1)[-1]
        if not numeric:
            return completion
        numbers = _NUMBER_RE.findall(completion)
        return numbers[-1] if numbers else None

    def check(self, completion: str, answer: str) -> bool:
        want = parse_number(answer)
        got = self.extract(completion, numeric=want is not None)
        if got is None:
            return False
        if want is None:  # a non-numeric reference answer: normalised string equality
            return _normalise_text(got) == _normalise_text(answer)
        value = parse_number(got)
        return value is not None and value == want


@dataclass(frozen=True)
class ArithmeticTask:
    """Sums of `n_terms` numbers with `digits` digits each, written as fixed-width text."""

    n_terms: int = 3
    digits: int = 2
    cot: bool = False

    def __post_init__(self) -> None:
        if self.n_terms < 2:
            raise ValueError(f"task.n_terms must be ≥ 2, got {self.n_terms}")
        if not 1 <= self.digits <= 9:
            raise ValueError(f"task.digits must be in 1..9, got {self.digits}")

    @property
    def answer_width(self) -> int:
        return len(str(self.n_terms * (10**self.digits - 1)))

    @property
    def space(self) -> int:
        return 10 ** (self.digits * self.n_terms)

    def prompt(self, terms) -> str:
        return "+".join(f"{t:0{self.digits}d}" for t in terms) + "="

    def answer(self, terms) -> str:
        return f"{sum(int(t) for t in terms):0{self.answer_width}d}"

    def target(self, terms) -> str:
        """The SFT completion: the answer, or running sums ending in the answer with `cot`."""
        if not self.cot or len(terms) == 2:
            return self.answer(terms)
        running = int(terms[0]) + int(terms[1])
        steps = [str(running)]
        for t in terms[2:]:
            running += int(t)
            steps.append(f"+{int(t):0{self.digits}d}=")
            steps.append(str(running))
        steps[-1] = self.answer(terms)
        return "".join(steps)

    def problem_class(self, terms) -> str:
        """Leading digit of the padded answer: the classes a collapsed policy tends to lose."""
        return f"lead{self.answer(terms)[0]}"

    def row(self, pid: str, terms) -> dict[str, str]:
        return {"pid": pid, "prompt": self.prompt(terms), "answer": self.answer(terms),
                "target": self.target(terms), "klass": self.problem_class(terms)}

    def draw(self, n: int, rng: np.random.Generator, exclude: set[tuple] = frozenset()) -> list[tuple]:
        """`n` distinct problems (tuples of terms) not in `exclude`, in draw order."""
        if n + len(exclude) > self.space // 2:
            raise ValueError(f"task has only {self.space} distinct problems; cannot draw {n} "
                             f"beyond {len(exclude)} excluded ones (raise task.digits or task.n_terms)")
        seen, out = set(exclude), []
        while len(out) < n:
            batch = rng.integers(0, 10**self.digits, size=(2 * (n - len(out)) + 8, self.n_terms))
            for terms in map(tuple, batch.tolist()):
                if terms not in seen:
                    seen.add(terms)
                    out.append(terms)
                    if len(out) == n:
                        break
        return out


def generate_splits(task: ArithmeticTask, n_train: int, n_heldout: int, seed: int):
    """(train_rows, heldout_rows): disjoint, a pure function of the arguments."""
    rng = np.random.default_rng([seed, 1])
    held = task.draw(n_heldout, rng)
    train = task.draw(n_train, np.random.default_rng([seed, 2]), exclude=set(held))
    return ([task.row(f"t{i:06d}", t) for i, t in enumerate(train)],
            [task.row(f"h{i:05d}", t) for i, t in enumerate(held)])


def _read_table(path: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"user task file not found: {path}")
    if path.suffix == ".parquet":
        return read_parquet(path).to_pylist()
    if path.suffix in (".jsonl", ".json"):
        import json

        rows = []
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        return rows
    raise DataError(f"user task file {path} must end in .jsonl or .parquet")


def load_user_task(path: str | os.PathLike, id_prefix: str = "u") -> list[dict[str, str]]:
    """Rows of a user task file: needs `prompt` and `answer`; `solution` and `class` are optional."""
    rows = _read_table(path)
    if not rows:
        raise DataError(f"user task file {path} has no rows")
    out = []
    for i, r in enumerate(rows):
        for key in ("prompt", "answer"):
            if key not in r or r[key] is None:
                raise DataError(f"user task file {path}: row {i} has no '{key}' (need prompt and answer)")
        answer = str(r["answer"]).strip()
        out.append({"pid": str(r.get("id", f"{id_prefix}{i:06d}")), "prompt": str(r["prompt"]),
                    "answer": answer, "target": str(r.get("solution") or answer),
                    "klass": str(r.get("class", "all"))})
    return out


def build_splits(cfg: Mapping[str, Any]):
    """(train_rows, heldout_rows) from the `task` config block."""
    if cfg["source"] == "generated":
        task = ArithmeticTask(cfg["n_terms"], cfg["digits"], cfg["cot"])
        return generate_splits(task, cfg["n_train"], cfg["n_heldout"], cfg["seed"])
    if cfg["source"] != "file":
        raise ValueError(f"task.source must be 'generated' or 'file', got {cfg['source']!r}")
    if not cfg.get("path"):
        raise ValueError("task.source is 'file' but task.path is empty")
    rows = load_user_task(cfg["path"])
    if cfg.get("heldout_path"):
        return rows, load_user_task(cfg["heldout_path"], id_prefix="h")
    if cfg["n_heldout"] >= len(rows):
        raise ValueError(f"task.n_heldout={cfg['n_heldout']} but {cfg['path']} has only {len(rows)} rows")
    order = np.random.default_rng([cfg["seed"], 3]).permutation(len(rows))
    held = set(order[: cfg["n_heldout"]].tolist())
    return ([r for i, r in enumerate(rows) if i not in held],
            [r for i, r in enumerate(rows) if i in held])


def write_splits(cfg: Mapping[str, Any], train_path, heldout_path) -> tuple[int, int]:
    train, held = build_splits(cfg)
    write_parquet(train, train_path)
    write_parquet(held, heldout_path)
    return len(train), len(held)


def read_split(path: str | os.PathLike) -> list[dict[str, str]]:
    rows = read_parquet(path).to_pylist()
    if rows and not {"pid", "prompt", "answer", "target", "klass"} <= rows[0].keys():
        raise DataError(f"{path}: not an RLVR task split (need pid, prompt, answer, target, klass)")
    return rows
