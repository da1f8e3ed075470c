"""The claims table: each study contributes rows; one rule assembles them.

A verdict is computed from per-seed effects, oriented so that a positive effect is what
the paper claims. A claim whose precondition does not hold at this scale (say, the vanilla
model formed no attention sink) is `inconclusive` with the reason, never judged.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from pipeline.io import atomic_path, read_parquet, write_parquet

VERDICTS = ("reproduced", "not reproduced", "inconclusive")

SCHEMA = pa.schema(
    [
        ("study", pa.string()),
        ("claim", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("baseline", pa.float64()),
        ("effect", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("n_seeds", pa.int64()),
        ("verdict", pa.string()),
        ("scale", pa.string()),
        ("note", pa.string()),
    ]
)


@dataclass
class Claim:
    study: str
    claim: str
    metric: str
    value: float
    baseline: float
    effect: float
    ci_low: float
    ci_high: float
    n_seeds: int
    verdict: str
    scale: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t CI of the mean over seeds; (nan, nan) for fewer than two finite values.

    With the two or three seeds a CPU run affords, a bootstrap interval is far too narrow;
    the t interval is honest about how little a handful of seeds says.
    """
    from scipy import stats

    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if x.size < 2:
        return (math.nan, math.nan)
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return (float(x.mean() - half), float(x.mean() + half))


def bootstrap_ci(
    values: Sequence[float], level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (for many samples, e.g. prompts or problems)."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if x.size < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))


def judge(
    *,
    study: str,
    claim: str,
    metric: str,
    values: Sequence[float],
    baselines: Sequence[float],
    scale: str,
    higher_is_claimed: bool,
    margin: float = 0.0,
    precondition: tuple[bool, str] = (True, ""),
    note: str = "",
) -> Claim:
    """Judge a paired comparison over seeds.

    effect_i = value_i - baseline_i (sign flipped when the paper claims a decrease), so a
    positive effect supports the claim (Student-t CI over seeds). `reproduced` needs the CI's lower end above
    `margin`; `not reproduced` needs the upper end at or below it; otherwise inconclusive.
    """
    v = np.asarray(values, dtype=float)
    b = np.asarray(baselines, dtype=float)
    if v.shape != b.shape:
        raise ValueError(f"{study}/{claim}: {v.size} values but {b.size} baselines")
    sign = 1.0 if higher_is_claimed else -1.0
    effects = sign * (v - b)
    lo, hi = mean_ci(effects)
    ok, reason = precondition
    if not ok:
        verdict, why = "inconclusive", f"precondition failed: {reason}"
    elif effects.size < 2 or not np.all(np.isfinite(effects)):
        verdict = "inconclusive"
        why = "fewer than two seeds" if effects.size < 2 else "non-finite values (a run diverged?)"
    elif lo > margin:
        verdict, why = "reproduced", ""
    elif hi <= margin:
        verdict, why = "not reproduced", ""
    else:
        verdict, why = "inconclusive", "95% CI of the effect straddles the margin"
    return Claim(
        study=study,
        claim=claim,
        metric=metric,
        value=float(np.nanmean(v)) if v.size else math.nan,
        baseline=float(np.nanmean(b)) if b.size else math.nan,
        effect=float(np.nanmean(effects)) if effects.size else math.nan,
        ci_low=lo,
        ci_high=hi,
        n_seeds=int(v.size),
        verdict=verdict,
        scale=scale,
        note="; ".join(s for s in (why, note) if s),
    )


def write_claims(claims: Sequence[Claim], path: str | Path) -> Path:
    rows = [asdict(c) for c in claims]
    return write_parquet(pa.Table.from_pylist(rows, schema=SCHEMA), path)


def assemble(parts: Sequence[str | Path], parquet_out: str | Path, md_out: str | Path) -> pa.Table:
    """Concatenate per-study claims into the table and its Markdown rendering."""
    tables = [read_parquet(p).cast(SCHEMA) for p in parts]
    table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    write_parquet(table, parquet_out)
    with atomic_path(md_out, ".md") as tmp:
        tmp.write_text(to_markdown(table))
    return table


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.4g}"


def _cell(text: str | None) -> str:
    """A table cell: a literal `|` (e.g. in `|RL∩base|/|RL|` or `max |h|`) would split the column."""
    return (text or "").replace("|", "\\|")


def to_markdown(table: pa.Table) -> str:
    lines = [
        "# Claims: what was measured and whether it held at this scale",
        "",
        "Effect is oriented so that a positive value supports the paper's claim. Unless a row's note "
        "says otherwise, the 95% CI is a Student-t interval of the mean effect over seeds, and a verdict "
        "needs the whole interval on one side.",
        "",
    ]
    rows = table.to_pylist()
    for study in dict.fromkeys(r["study"] for r in rows):
        lines += [f"## {study}", "", "| claim | metric | value | baseline | effect [95% CI] | seeds | verdict | scale | note |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["study"] == study):
            ci = f"{_fmt(r['effect'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            lines.append(
                f"| {_cell(r['claim'])} | {_cell(r['metric'])} | {_fmt(r['value'])} | {_fmt(r['baseline'])} | {ci} | "
                f"{r['n_seeds']} | **{r['verdict']}** | {_cell(r['scale'])} | {_cell(r['note'])} |"
            )
        lines.append("")
    return "\n".join(lines)
