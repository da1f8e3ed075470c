"""From per-run results to the summary table and the study's claims rows.

Primary metric: final time at goal of the deterministic actor on fixed random start/goal pairs
(the same pairs for every run); the hard pair (one end of the maze to the other) is reported in
its own rows. Paired comparisons are per seed (`pipeline.claims.judge`). The ceiling is the
maze oracle's time at goal on the same pairs; a comparison whose baseline network already
reaches `ceiling_fraction` of it is `inconclusive` (no room left for depth to help). The rules
are spelled out in docs/studies/crl.md.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.claims import Claim, bootstrap_ci, judge, write_claims
from pipeline.io import read_json, read_parquet, write_parquet
from pipeline.studies.crl.config import CRLConfig, networks, parse

STUDY = "crl"


def summarize(cfg: CRLConfig, run_dirs: Sequence[str | Path], out: str | Path | None = None) -> list[dict]:
    """One row per run: network, seed, final evaluation, oracle, env steps, wall time."""
    meta = {n["name"]: n for n in networks(cfg)}
    rows = []
    for d in map(Path, run_dirs):
        run = read_json(d / "run.json")
        ev = read_parquet(d / "eval.parquet").to_pylist()
        name = f"d{run['depth']}_w{run['width']}"
        if name not in meta:
            raise ValueError(f"{d}: network {name} is not in the config's sweep ({sorted(meta)})")
        row = {"net": name, "depth": run["depth"], "width": run["width"], "kind": meta[name]["kind"],
               "matches": meta[name]["matches"] or 0, "params": run["params"]["total"], "seed": run["seed"],
               "env_steps": run["env_steps"], "updates": run["updates"], "wall_s": run["wall_s"],
               "cpu_s": run.get("cpu_s", math.nan),
               "diverged": bool(run["diverged"])}
        for r in ev:
            row[f"{r['policy']}_{r['pairs']}_time_at_goal"] = r["time_at_goal"]
            row[f"{r['policy']}_{r['pairs']}_success_any"] = r["success_any"]
        curve = read_parquet(d / "metrics.parquet").to_pylist()
        last = curve[-1] if curve else {}
        row["train_time_at_goal"] = last.get("train_time_at_goal", math.nan)
        row["train_success_any"] = last.get("train_success_any", math.nan)
        rows.append(row)
    rows.sort(key=lambda r: (r["kind"], r["depth"], r["width"], r["seed"]))
    if out is not None:
        write_parquet(rows, out)
    return rows


def _by_seed(rows: list[dict], net: str, metric: str) -> dict[int, float]:
    return {r["seed"]: float(r.get(metric, math.nan)) for r in rows if r["net"] == net}


def _paired(rows: list[dict], a: str, b: str, metric: str) -> tuple[list[float], list[float]]:
    va, vb = _by_seed(rows, a, metric), _by_seed(rows, b, metric)
    seeds = sorted(set(va) & set(vb))
    return [va[s] for s in seeds], [vb[s] for s in seeds]


def _mean(rows: list[dict], net: str, metric: str) -> float:
    v = [x for x in _by_seed(rows, net, metric).values() if np.isfinite(x)]
    return float(np.mean(v)) if v else math.nan


def _ceiling(rows: list[dict], pairs: str) -> float:
    v = [r.get(f"oracle_{pairs}_time_at_goal", math.nan) for r in rows]
    v = [x for x in v if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else 1.0  # no oracle (gymnasium envs): the metric's bound


def _room(rows: list[dict], net: str, pairs: str, frac: float) -> tuple[bool, str]:
    m, ceil = _mean(rows, net, f"agent_{pairs}_time_at_goal"), _ceiling(rows, pairs)
    if not np.isfinite(m):
        return False, f"{net} has no finite result"
    if m >= frac * ceil:
        return False, (f"{net} already reaches {m:.3f} time at goal, {m / ceil:.0%} of the oracle's {ceil:.3f} "
                       f"(>= {frac:.0%}): no room left for depth to help at this scale")
    return True, ""


def _gain(rows: list[dict], deep: str, shallow: str, metric: str) -> tuple[bool, str]:
    """Did deepening `shallow` to `deep` improve `metric` (paired CI above 0)?"""
    v, b = _paired(rows, deep, shallow, metric)
    gain = np.subtract(v, b)
    lo, hi = bootstrap_ci(gain)
    if np.isfinite(lo) and lo > 0:
        return True, ""
    mean = float(np.mean(gain)) if gain.size else math.nan
    return False, f"deepening {shallow}→{deep} did not itself improve time at goal (effect {mean:.3f}, 95% CI [{lo:.3f}, {hi:.3f}])"


def _means_note(rows: list[dict], nets: list[str], metric: str) -> str:
    return "means " + ", ".join(f"{n}={_mean(rows, n, metric):.3f}" for n in nets)


def claims(cfg: CRLConfig, rows: list[dict], scale: str) -> list[Claim]:
    c = cfg.claims
    sweep = sorted({(r["depth"], r["net"]) for r in rows if r["kind"] == "depth"})
    nets = [n for _, n in sweep]
    out: list[Claim] = []
    if len(nets) < 2:
        return [Claim(STUDY, "time at goal grows with depth", "eval time at goal (random pairs)", math.nan, math.nan,
                      math.nan, math.nan, math.nan, 0, "inconclusive", scale, "fewer than two depths in the sweep")]
    shallow, deep = nets[0], nets[-1]

    # 1. Performance grows with depth: deepest vs shallowest, random pairs and the hard pair.
    for pairs, label in (("random", "random pairs"), ("hard", "hard pair")):
        metric = f"agent_{pairs}_time_at_goal"
        if not any(metric in r for r in rows):
            continue
        pre = _room(rows, shallow, pairs, c.ceiling_fraction)
        if pairs == "hard" and pre[0] and not any((r.get("agent_hard_success_any") or 0) > 0 for r in rows):
            pre = (False, "no network of any depth reached the hard goal in any episode: exploration and data "
                          "limit this budget, not capacity")
        v, b = _paired(rows, deep, shallow, metric)
        out.append(judge(study=STUDY, claim=f"time at goal grows with depth ({label})",
                         metric=f"eval time at goal ({label}), {deep} vs {shallow}", values=v, baselines=b,
                         scale=scale, higher_is_claimed=True, precondition=pre,
                         note=_means_note(rows, nets, metric)))

    # 2. A sharp jump at a critical depth (random pairs).
    metric = "agent_random_time_at_goal"
    if len(nets) < 3:
        out.append(Claim(STUDY, "sharp jump at a critical depth", "largest step between consecutive depths",
                         math.nan, math.nan, math.nan, math.nan, math.nan, 0, "inconclusive", scale,
                         "needs at least three depths"))
    else:
        steps = [np.mean(np.subtract(*_paired(rows, nets[k], nets[k - 1], metric))) for k in range(1, len(nets))]
        k = int(np.nanargmax(steps)) + 1
        v, b = _paired(rows, nets[k], nets[k - 1], metric)
        total = _mean(rows, deep, metric) - _mean(rows, shallow, metric)
        share = steps[k - 1] / total if total > 0 else math.nan
        note = (f"critical depth {nets[k]} (largest step, from {nets[k - 1]}); it is "
                f"{share:.0%} of the total gain {total:.3f}" if np.isfinite(share) else
                f"critical depth {nets[k]}; the total gain {total:.3f} is not positive")
        pre = _room(rows, shallow, "random", c.ceiling_fraction)
        if pre[0]:
            ok, why = _gain(rows, deep, shallow, metric)
            pre = (ok, f"{why}: there is no gain to come in a jump" if not ok else "")
        claim = judge(study=STUDY, claim="sharp jump at a critical depth",
                      metric=f"eval time at goal (random pairs), {nets[k]} minus {nets[k - 1]}", values=v,
                      baselines=b, scale=scale, higher_is_claimed=True, margin=c.jump_min, precondition=pre,
                      note=(f"{note}; jump must exceed {c.jump_min} and be >= {c.jump_share:.0%} of the total gain"
                            if pre[0] else _means_note(rows, nets, metric)))
        if claim.verdict == "reproduced" and not (np.isfinite(share) and share >= c.jump_share):
            claim.verdict = "not reproduced"
            claim.note = "the largest step is a small share of the total gain: gradual, not a jump; " + claim.note
        out.append(claim)

    # 3. Widening a shallow network does not match deepening it (matched parameter counts).
    controls = sorted({(r["matches"], r["net"]) for r in rows if r["kind"] == "width"})
    for matched, wide in controls:
        deep_net = next((n for d, n in sweep if d == matched), None)
        if deep_net is None:
            continue
        v, b = _paired(rows, deep_net, wide, metric)
        pre = _room(rows, wide, "random", c.ceiling_fraction)
        if pre[0]:
            ok, why = _gain(rows, deep_net, shallow, metric)
            pre = (ok, f"{why}: nothing for widening to match" if not ok else "")
        out.append(judge(study=STUDY, claim="widening does not match deepening",
                         metric=f"eval time at goal (random pairs), {deep_net} vs {wide} (matched params)",
                         values=v, baselines=b, scale=scale, higher_is_claimed=True, precondition=pre,
                         note=_means_note(rows, [shallow, wide, deep_net], metric)))
    return out


def analyse(study: dict, run_dirs: Sequence[str | Path], summary_out: str | Path, claims_out: str | Path,
            scale: str) -> list[Claim]:
    """Summary table + claims rows from the raw `studies.crl` block and the run directories."""
    cfg = parse(study)
    rows = summarize(cfg, run_dirs, summary_out)
    out = claims(cfg, rows, scale)
    write_claims(out, claims_out)
    return out
