"""From per-run results to the summary table and the study's claims rows.

Primary metric: final time at goal of the deterministic actor on fixed random start/goal pairs
(the same pairs for every run); the hard pair (one end of the maze to the other) is reported in
its own rows. Paired comparisons are per seed (`pipeline.claims.judge`, Student-t). The ceiling is the
maze oracle's time at goal on the same pairs; a comparison whose baseline network already
reaches `ceiling_fraction` of it is `inconclusive` (no room left for depth to help). The rules
are spelled out in docs/studies/crl.md.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.claims import Claim, claim_row, judge, write_claims
from pipeline.io import read_json, read_parquet, write_parquet
from pipeline.stats import t_interval
from pipeline.studies.crl import STUDY
from pipeline.studies.crl.config import CRLConfig, networks, parse


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
        row["critic_accuracy"] = last.get("accuracy", math.nan)
        row["alpha"] = last.get("alpha", math.nan)
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


def _floor(cfg: CRLConfig) -> float:
    """Noise floor of a paired difference of two evaluations: time at goal lies in [0, 1], so
    one evaluation's mean over `episodes` episodes has an SD of at most 0.5/√episodes."""
    return math.sqrt(2) * 0.5 / math.sqrt(cfg.evaluation.episodes)


def _trained(rows: list[dict], nets: Sequence[str], min_acc: float) -> tuple[bool, str]:
    """Under-training precondition from the signals training logs: every compared network's
    final contrastive critic accuracy must reach `min_acc` (chance is 1/batch)."""
    low = []
    for n in nets:
        acc = _mean(rows, n, "critic_accuracy")
        if not (np.isfinite(acc) and acc >= min_acc):
            low.append(f"{n} {acc:.2f}")
    if not low:
        return True, ""
    alpha = _mean(rows, nets[0], "alpha")
    return False, (f"under-trained: final critic accuracy {', '.join(low)} < {min_acc} "
                   f"(entropy temperature α {alpha:.2f}; training is still in its opening transient)")


def _gain(cfg: CRLConfig, rows: list[dict], deep: str, shallow: str, metric: str) -> tuple[bool, str]:
    """Did deepening `shallow` to `deep` improve `metric`? (Student-t CI over seeds above 0.)"""
    v, b = _paired(rows, deep, shallow, metric)
    iv = t_interval(np.subtract(v, b), floor=_floor(cfg))
    if iv.finite and iv.low > 0:
        return True, ""
    return False, (f"deepening {shallow}→{deep} did not itself improve time at goal (effect {iv.estimate:.3f}, "
                   f"95% CI [{iv.low:.3f}, {iv.high:.3f}])")


def _both(*pres: tuple[bool, str]) -> tuple[bool, str]:
    """The first failed precondition, or (True, '')."""
    return next((p for p in pres if not p[0]), (True, ""))


def _means_note(rows: list[dict], nets: list[str], metric: str) -> str:
    return "means " + ", ".join(f"{n}={_mean(rows, n, metric):.3f}" for n in nets)


def _jump_claim(cfg: CRLConfig, rows: list[dict], nets: list[str], scale: str) -> Claim:
    """A jump: the largest step between consecutive depths exceeds the others' mean (the slope)."""
    c, metric = cfg.claims, "agent_random_time_at_goal"
    name = "sharp jump at a critical depth"
    label = "largest step between consecutive depths minus the mean of the other steps"
    if len(nets) < c.min_jump_depths:
        return claim_row(study=STUDY, claim=name, metric=label, value=math.nan, baseline=c.jump_min,
                         iv=t_interval([], floor=0.0), scale=scale,
                         precondition=(False, f"{len(nets)} depths: a jump can be told from a slope only with "
                                              f"at least {c.min_jump_depths} (claims.min_jump_depths)"))
    seeds = sorted(set.intersection(*(set(_by_seed(rows, n, metric)) for n in nets)))
    m = np.array([[_by_seed(rows, n, metric)[s] for n in nets] for s in seeds])  # [seed, depth]
    steps = np.diff(m, axis=1)
    k = int(np.nanargmax(steps.mean(axis=0))) if steps.size else 0
    excess = steps[:, k] - np.delete(steps, k, axis=1).mean(axis=1) if steps.size else np.array([])
    iv = t_interval(excess, floor=2 * _floor(cfg))
    pre = _both(_room(rows, nets[0], "random", c.ceiling_fraction),
                _trained(rows, nets, c.min_critic_accuracy))
    if pre[0]:
        ok, why = _gain(cfg, rows, nets[-1], nets[0], metric)
        pre = (ok, f"{why}: there is no gain to come in a jump" if not ok else "")
    return claim_row(study=STUDY, claim=name, metric=f"{label} (random pairs)",
                     value=float(steps[:, k].mean()) if steps.size else math.nan, baseline=c.jump_min,
                     iv=iv, scale=scale, margin=c.jump_min, precondition=pre,
                     note=(f"critical depth {nets[k + 1]} (largest mean step, from {nets[k]}); the step must exceed "
                           f"the other steps' mean by more than {c.jump_min}; k is chosen on the same seeds "
                           f"(a small upward bias); " + _means_note(rows, nets, metric)))


def claims(cfg: CRLConfig, rows: list[dict], scale: str) -> list[Claim]:
    c = cfg.claims
    sweep = sorted({(r["depth"], r["net"]) for r in rows if r["kind"] == "depth"})
    nets = [n for _, n in sweep]
    out: list[Claim] = []
    if len(nets) < 2:
        return [Claim(STUDY, "time at goal grows with depth", "eval time at goal (random pairs)", math.nan, math.nan,
                      math.nan, math.nan, math.nan, 0, "inconclusive", scale, "fewer than two depths in the sweep")]
    shallow, deep = nets[0], nets[-1]
    floor = _floor(cfg)

    # 1. Performance grows with depth: deepest vs shallowest, random pairs and the hard pair.
    for pairs, label in (("random", "random pairs"), ("hard", "hard pair")):
        metric = f"agent_{pairs}_time_at_goal"
        if not any(metric in r for r in rows):
            continue
        pre = _both(_room(rows, shallow, pairs, c.ceiling_fraction),
                    _trained(rows, [shallow, deep], c.min_critic_accuracy))
        if pairs == "hard" and pre[0] and not any((r.get("agent_hard_success_any") or 0) > 0 for r in rows):
            pre = (False, "no network of any depth reached the hard goal in any episode: exploration and data "
                          "limit this budget, not capacity")
        v, b = _paired(rows, deep, shallow, metric)
        episodes = cfg.evaluation.episodes if pairs == "random" else max(cfg.evaluation.hard_episodes, 1)
        out.append(judge(study=STUDY, claim=f"time at goal grows with depth ({label})",
                         metric=f"eval time at goal ({label}), {deep} vs {shallow}", values=v, baselines=b,
                         scale=scale, higher_is_claimed=True, floor=math.sqrt(2) * 0.5 / math.sqrt(episodes),
                         precondition=pre, note=_means_note(rows, nets, metric)))

    # 2. A sharp jump at a critical depth (random pairs).
    out.append(_jump_claim(cfg, rows, nets, scale))

    # 3. Widening a shallow network does not match deepening it (matched parameter counts).
    metric = "agent_random_time_at_goal"
    controls = sorted({(r["matches"], r["net"]) for r in rows if r["kind"] == "width"})
    for matched, wide in controls:
        deep_net = next((n for d, n in sweep if d == matched), None)
        if deep_net is None:
            continue
        v, b = _paired(rows, deep_net, wide, metric)
        pre = _both(_room(rows, wide, "random", c.ceiling_fraction),
                    _trained(rows, [shallow, wide, deep_net], c.min_critic_accuracy))
        if pre[0]:
            ok, why = _gain(cfg, rows, deep_net, shallow, metric)
            pre = (ok, f"{why}: nothing for widening to match" if not ok else "")
        out.append(judge(study=STUDY, claim="widening does not match deepening",
                         metric=f"eval time at goal (random pairs), {deep_net} vs {wide} (matched params)",
                         values=v, baselines=b, scale=scale, higher_is_claimed=True, floor=floor, precondition=pre,
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
