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
    """Sums of n numbers with `digits` digits each, n drawn uniformly from `n_terms`.

    A mixture such as n_terms=(2, 3) gives problems of two difficulties in one set, like
    the levels of a math benchmark: a small base solves most short sums and a few long ones.
    """

    n_terms: tuple[int, ...] = (3,)
    digits: int = 2
    cot: bool = False

    def __post_init__(self) -> None:
        terms = (self.n_terms,) if isinstance(self.n_terms, int) else tuple(self.n_terms)
        object.__setattr__(self, "n_terms", terms)
        if not terms or min(terms) < 2 or len(set(terms)) != len(terms):
            raise ValueError(f"task.n_terms must be distinct integers ≥ 2, got {list(terms)}")
        if not 1 <= self.digits <= 9:
            raise ValueError(f"task.digits must be in 1..9, got {self.digits}")

    def answer_width(self, n: int) -> int:
        return len(str(n * (10**self.digits - 1)))

    @property
    def space(self) -> int:
        return sum(10 ** (self.digits * n) for n in self.n_terms)

    def prompt(self, terms) -> str:
        return "+".join(f"{t:0{self.digits}d}" for t in terms) + "="

    def answer(self, terms) -> str:
        return f"{sum(int(t) for t in terms):0{self.answer_width(len(terms))}d}"

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
        """Number of terms and leading digit of the padded answer, e.g. "3t-lead0": the
        difficulty level, and the answer class a collapsed policy tends to lose."""
        return f"{len(terms)}t-lead{self.answer(terms)[0]}"

    def row(self, pid: str, terms) -> dict[str, str]:
        return {"pid": pid, "prompt": self.prompt(terms), "answer": self.answer(terms),
                "target": self.target(terms), "klass": self.problem_class(terms)}

    def draw(self, n: int, rng: np.random.Generator, exclude: set[tuple] = frozenset()) -> list[tuple]:
        """`n` distinct problems (tuples of terms) not in `exclude`, in draw order."""
        seen, out, tries = set(exclude), [], 0
        while len(out) < n:
            if tries > 50 * n + 1000:
                raise ValueError(f"task with n_terms={list(self.n_terms)}, digits={self.digits} has too few "
                                 f"distinct problems for {n} more beyond {len(exclude)} excluded ones "
                                 "(raise task.digits or task.n_terms, or lower task.n_train)")
            tries += 1
            k = self.n_terms[int(rng.integers(len(self.n_terms)))]
            terms = tuple(rng.integers(0, 10**self.digits, size=k).tolist())
            if terms not in seen:
                seen.add(terms)
                out.append(terms)
        return out


def length_errors(cfg: Mapping[str, Any]) -> list[str]:
    """Why a generated task cannot fit the character models of `studies.rlvr` (empty when it fits).

    Checked at DAG build: a spine model's max_seq_len must hold the longest prompt (BOS included) plus
    sampling.max_new_tokens, and the longest SFT target (EOS included). Otherwise the teacher trains for
    hours and its sampling fails afterwards. HF models and user task files are checked by the job
    (`pipeline.sampling.generate`), as their token counts need the tokenizer or the data.
    """
    task = cfg["task"]
    if task["source"] != "generated":
        return []
    t = ArithmeticTask(tuple(task["n_terms"]), int(task["digits"]), bool(task["cot"]))
    worst = [(10 ** t.digits - 1,) * n for n in t.n_terms]
    prompt = 1 + max(len(t.prompt(w)) for w in worst)
    target = 1 + max(len(t.target(w)) for w in worst)
    new = int(cfg["sampling"]["max_new_tokens"])
    errors = []
    for key, model in (("studies.rlvr.model", cfg["model"]), ("studies.rlvr.teacher.model", cfg["teacher"]["model"])):
        if model["kind"] != "spine":
            continue
        limit = int(model["max_seq_len"])
        if prompt + new > limit:
            errors.append(f"{key}.max_seq_len={limit} cannot hold the longest prompt ({prompt} tokens) + "
                          f"studies.rlvr.sampling.max_new_tokens={new}")
        if prompt + target > limit:
            errors.append(f"{key}.max_seq_len={limit} cannot hold the longest prompt ({prompt} tokens) + "
                          f"its SFT target ({target} tokens)")
    return errors


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
        task = ArithmeticTask(tuple(cfg["n_terms"]), cfg["digits"], cfg["cot"])
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


def read_split(path: str | os.PathLike) -> list[dict[str, str]]:
    rows = read_parquet(path).to_pylist()
    if rows and not {"pid", "prompt", "answer", "target", "klass"} <= rows[0].keys():
        raise DataError(f"{path}: not an RLVR task split (need pid, prompt, answer, target, klass)")
    return rows


def write_task(cfg: Mapping[str, Any], train_path, heldout_path, tokenizer_path) -> tuple[int, int]:
    """Write both splits and the character table covering every prompt and target."""
    from pipeline.studies.rlvr.tokenizer import CharTokenizer

    train, held = build_splits(cfg)
    tok = CharTokenizer.from_texts(r[k] for r in (*train, *held) for k in ("prompt", "target", "answer"))
    write_parquet(train, train_path)
    write_parquet(held, heldout_path)
    tok.save(tokenizer_path)
    return len(train), len(held)
