"""The smoke run's numbers, recorded once and compared after any change that must not move them.

A refactor of the job layer, the specs or the set-up must leave every number of the smoke preset
as it was; `tests/spine/test_same_numbers.py` holds it to that. What is recorded: every claims row
(value, baseline, effect, interval, mde, seeds, verdict) — each study's numbers flow into its
claims — and every training run's curves (sum and final value of each numeric column of its
metrics.parquet). Timings are left out: they are not results.

Re-record only on purpose, when a change is meant to move the numbers, and say why in the commit:

    python -m tests.helpers.smoke_numbers <smoke work dir> > tests/spine/smoke_numbers.json
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from pipeline.io import read_parquet

CLAIM_NUMBERS = ("value", "baseline", "effect", "ci_low", "ci_high", "mde", "n_seeds")


def is_timing(column: str) -> bool:
    return column in ("wall_s", "cpu_s", "step_time", "seconds") or column.endswith("_per_s")


def _num(x) -> float | None:
    """JSON has no NaN: None stands for a missing number."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def record(workdir: Path) -> dict:
    results = Path(workdir) / "results"
    claims = {}
    for path in sorted(results.glob("*/claims.parquet")):
        for row in read_parquet(path).to_pylist():
            key = f"{row['study']} | {row['claim']} | {row['metric']}"
            claims[key] = {**{k: _num(row[k]) for k in CLAIM_NUMBERS}, "verdict": row["verdict"]}
    curves = {}
    for path in sorted(results.rglob("metrics.parquet")):
        if "ckpt" in path.parts:  # the engine's resume copies repeat the final file
            continue
        table = read_parquet(path)
        run = str(path.parent.relative_to(results))
        for name in table.column_names:
            values = table.column(name).to_pylist()
            if is_timing(name) or not values or not all(isinstance(v, (int, float)) for v in values if v is not None):
                continue
            finite = [float(v) for v in values if v is not None and math.isfinite(v)]
            curves[f"{run} | {name}"] = {"sum": _num(math.fsum(finite)), "last": _num(values[-1]), "rows": len(values)}
    return {"claims": claims, "curves": curves}


if __name__ == "__main__":
    json.dump(record(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
