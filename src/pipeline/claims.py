"""The claims table: each study contributes rows; one rule assembles them.

A verdict is computed from an interval of the effect, oriented so that a positive effect is
what the paper claims; intervals, the minimum detectable effect and the verdict rule live in
`pipeline.stats`. A claim whose precondition does not hold at this scale (say, the vanilla
model formed no attention sink) is `inconclusive` with the reason, never judged.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from pipeline.io import atomic_path, read_parquet, write_parquet
from pipeline.stats import VERDICTS, Interval, decide, t_interval

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
        ("mde", pa.float64()),
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
    n_seeds: int  # units the interval is over: seeds, prompts or fitted points (pipeline.stats.Interval.n)
    verdict: str
    scale: str
    note: str = ""
    mde: float = math.nan  # smallest distance from the margin the design could detect (pipeline.stats)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def claim_row(*, study: str, claim: str, metric: str, value: float, baseline: float, iv: Interval,
              scale: str, margin: float = 0.0, precondition: tuple[bool, str] = (True, ""),
              note: str = "") -> Claim:
    """A row from an interval of the oriented effect, decided by `pipeline.stats.decide`."""
    verdict, why = decide(iv, margin, precondition)
    return Claim(study=study, claim=claim, metric=metric, value=float(value), baseline=float(baseline),
                 effect=iv.estimate, ci_low=iv.low, ci_high=iv.high, n_seeds=iv.n, verdict=verdict,
                 scale=scale, note="; ".join(s for s in (why, note) if s), mde=iv.mde)


def judge(
    *,
    study: str,
    claim: str,
    metric: str,
    values: Sequence[float],
    baselines: Sequence[float],
    scale: str,
    higher_is_claimed: bool,
    floor: float,
    shared_se: float = 0.0,
    margin: float = 0.0,
    precondition: tuple[bool, str] = (True, ""),
    note: str = "",
) -> Claim:
    """Judge a paired comparison over seeds.

    effect_i = value_i − baseline_i (sign flipped when the paper claims a decrease), so a
    positive effect supports the claim; its interval is `pipeline.stats.t_interval` with the
    noise `floor` of one evaluation (and `shared_se` for a baseline evaluated once).
    """
    v = np.asarray(values, dtype=float)
    b = np.asarray(baselines, dtype=float)
    if v.shape != b.shape:
        raise ValueError(f"{study}/{claim}: {v.size} values but {b.size} baselines")
    sign = 1.0 if higher_is_claimed else -1.0
    iv = t_interval(sign * (v - b), floor=floor, shared_se=shared_se)
    return claim_row(study=study, claim=claim, metric=metric,
                     value=float(np.nanmean(v)) if v.size else math.nan,
                     baseline=float(np.nanmean(b)) if b.size else math.nan, iv=iv, scale=scale,
                     margin=margin, precondition=precondition, note=note)


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
        "needs the whole interval on one side of the margin. `mde` is the smallest distance from the "
        "margin this design (its spread and its number of seeds, prompts or points) would detect with "
        "80% power; `n` counts the units the interval is over (seeds; prompts for hivemind; (size, seed) "
        "points for the diffusion slopes). docs/claims.md lists each claim's metric, precondition and falsifier.",
        "",
    ]
    rows = table.to_pylist()
    for study in dict.fromkeys(r["study"] for r in rows):
        lines += [f"## {study}", "", "| claim | metric | value | baseline | effect [95% CI] | mde | n | verdict | scale | note |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["study"] == study):
            ci = f"{_fmt(r['effect'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            lines.append(
                f"| {_cell(r['claim'])} | {_cell(r['metric'])} | {_fmt(r['value'])} | {_fmt(r['baseline'])} | {ci} | "
                f"{_fmt(r['mde'])} | {r['n_seeds']} | **{r['verdict']}** | {_cell(r['scale'])} | {_cell(r['note'])} |"
            )
        lines.append("")
    return "\n".join(lines)
