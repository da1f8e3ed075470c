"""The verifiable task: seeded multi-term addition, or a user's file of problems.

A generated problem is "ab+cd+ef=" with zero-padded terms; the reference completion is the
zero-padded sum (or, with `cot`, the running sums "46+56=102"). Difficulty is the number of
terms and digits. Held-out and training problems are disjoint by construction.

A user task is a JSONL, JSON-array or Parquet file as the datasets come: raw GSM8K
(`question`, `answer` = worked solution ending in "#### 72"), MATH-style (`problem`,
`solution` ending in \\boxed{...}, optionally `answer`), or plain `prompt`/`answer`
(optionally `solution`, `class`). The columns are found by those names, or named by
`task.columns`. The reference answer is extracted from a worked solution (`final_answer`),
which is kept as the SFT target; a row without a readable answer fails naming file and row.

The checker is exact but format-tolerant: "102", "0102", " 102", "+102", "102.0", "1,020"
and "204/2" are all the number 102. `strict` mode (for the character model) reads the text
after the last "=" and requires it to be one number; `last_number` mode (for free-form
LM output such as GSM8K) reads the last \\boxed{...}, else the first number after the first
"####", else the last number.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.io import DataError, iter_records, read_parquet, write_parquet

CHECKER_MODES = ("strict", "last_number")
_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
# Column names tried in order when task.columns leaves one null: plain, GSM8K, MATH.
COLUMN_NAMES = {"prompt": ("prompt", "question", "problem"), "answer": ("answer", "solution"),
                "solution": ("solution",)}


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


def _boxed(text: str) -> list[str]:
    """The contents of every \\boxed{...} (or \\fbox{...}) in `text`, nested braces matched."""
    out = []
    for m in _BOXED_RE.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[m.end():i - 1])
    return out


def final_answer(text: str) -> str | None:
    """The marked final answer of a solution: the last \\boxed{}, else what follows the first
    "####" (its first number, or the rest of that line when it holds none); None if unmarked."""
    boxed = _boxed(text)
    if boxed:
        return boxed[-1].strip()
    if "####" in text:
        rest = text.split("####", 1)[1]
        number = _NUMBER_RE.search(rest)
        return number.group(0) if number else rest.strip().split("\n", 1)[0].strip()
    return None


def _as_number(text: str) -> Fraction | None:
    """`text` as a number, or the one number inside it ("72 apples", "\\$72\\text{ dollars}")."""
    value = parse_number(text)
    if value is None:
        numbers = _NUMBER_RE.findall(text)
        if len(numbers) == 1:
            value = parse_number(numbers[0])
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
        marked = final_answer(completion)
        if marked is not None:
            return marked
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
        value = parse_number(got) if self.mode == "strict" else _as_number(got)
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


def _column(cfg_columns: Mapping[str, Any] | None, role: str, present, where: str,
            required: bool = True) -> str | None:
    """The column holding `role`: the one task.columns names, else the first known name present."""
    named = (cfg_columns or {}).get(role)
    if named:
        if named not in present:
            raise DataError(f"{where}: no column {named!r} (studies.rlvr.task.columns.{role}); "
                            f"columns: {sorted(present)}")
        return named
    found = next((c for c in COLUMN_NAMES[role] if c in present), None)
    if found is None and required:
        raise DataError(f"{where}: no {role} column (looked for {list(COLUMN_NAMES[role])}; name yours in "
                        f"studies.rlvr.task.columns.{role}); columns: {sorted(present)}")
    return found


def _text(value: Any, where: str, column: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{where}: column {column!r} must be text or a number, got {type(value).__name__}")
    return str(value)


def _reference_answer(reference: str, where: str, column: str) -> str:
    """The answer of a reference: marked (#### / \\boxed{}) in a worked solution, or the text itself.

    A marker from which nothing can be read (a "####" without a number, an empty or unclosed
    \\boxed{) is an error: grading against the whole solution would fail every sample silently.
    """
    answer = final_answer(reference)
    boxed = bool(_boxed(reference))
    marked = boxed or "####" in reference or _BOXED_RE.search(reference) is not None
    if answer is None and not marked:
        answer = reference
    elif "####" in reference and not boxed and not _NUMBER_RE.search(reference.split("####", 1)[1]):
        answer = None
    if not answer:
        raise DataError(f"{where}: no answer can be read from {column!r} ({reference[-80:]!r}): want a number "
                        "or text, or a worked solution ending in '#### <number>' or \\boxed{<answer>}")
    return answer


def load_user_task(path: str | os.PathLike, columns: Mapping[str, Any] | None = None,
                   id_prefix: str = "u") -> list[dict[str, str]]:
    """Rows of a user task file (see the module docstring for the layouts it reads); `class`
    (or MATH's `level`) becomes the problem class."""
    path = Path(path)
    out: list[dict[str, str]] = []
    cols: dict[str, str | None] = {}
    for i, (where, rec) in enumerate(iter_records(path)):
        if not isinstance(rec, dict):
            raise DataError(f"{where}: a problem must be a JSON object, got {type(rec).__name__}")
        if not cols:
            cols = {role: _column(columns, role, rec.keys(), where, required=role != "solution")
                    for role in ("prompt", "answer", "solution")}
            if cols["solution"] == cols["answer"]:
                cols["solution"] = None
        for role in ("prompt", "answer"):
            if rec.get(cols[role]) is None:
                raise DataError(f"{where}: no {cols[role]!r} ({role}) in this row")
        prompt = _text(rec[cols["prompt"]], where, cols["prompt"]).strip()
        reference = _text(rec[cols["answer"]], where, cols["answer"]).strip()
        if not prompt:
            raise DataError(f"{where}: empty {cols['prompt']!r} (the prompt)")
        answer = _reference_answer(reference, where, cols["answer"])
        solution = rec.get(cols["solution"]) if cols["solution"] else None
        target = _text(solution, where, cols["solution"]).strip() if solution else (
            reference if answer != reference else answer)
        out.append({"pid": str(rec.get("id", f"{id_prefix}{i:06d}")), "prompt": prompt, "answer": answer,
                    "target": target, "klass": str(rec.get("class", rec.get("level", "all")))})
    if not out:
        raise DataError(f"user task file {path} has no rows")
    return out


def checker_mode(cfg: Mapping[str, Any]) -> str:
    """task.checker, with `auto` resolved: strict for generated sums, last_number for a user's file."""
    if cfg["checker"] != "auto":
        return cfg["checker"]
    return "strict" if cfg["source"] == "generated" else "last_number"


def build_splits(cfg: Mapping[str, Any]):
    """(train_rows, heldout_rows) from the `task` config block."""
    if cfg["source"] == "generated":
        task = ArithmeticTask(tuple(cfg["n_terms"]), cfg["digits"], cfg["cot"])
        return generate_splits(task, cfg["n_train"], cfg["n_heldout"], cfg["seed"])
    if cfg["source"] != "file":
        raise ValueError(f"task.source must be 'generated' or 'file', got {cfg['source']!r}")
    if not cfg["path"]:
        raise ValueError("task.source is 'file' but task.path is empty")
    rows = load_user_task(cfg["path"], cfg["columns"])
    if cfg["heldout_path"]:
        return rows, load_user_task(cfg["heldout_path"], cfg["columns"], id_prefix="h")
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
    from pipeline.models.chars import CharTokenizer

    train, held = build_splits(cfg)
    tok = CharTokenizer.from_texts(r[k] for r in (*train, *held) for k in ("prompt", "target", "answer"))
    write_parquet(train, train_path)
    write_parquet(held, heldout_path)
    tok.save(tokenizer_path)
    return len(train), len(held)
