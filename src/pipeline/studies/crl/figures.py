"""The study's three figures: time at goal vs depth, learning curves per depth, depth vs width.

Means over seeds with the min–max range shaded (seeds are few, so the range hides nothing);
single seeds as dots. The maze oracle's time at goal is the dashed ceiling.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.io import read_parquet
from pipeline.plots import savefig, subplots

PAIRS = (("random", "random pairs"), ("hard", "hard pair"))


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return (np.nan, np.nan, np.nan)
    return float(v.mean()), float(v.min()), float(v.max())


def _ceiling(rows: list[dict], pairs: str) -> float | None:
    v = [r.get(f"oracle_{pairs}_time_at_goal") for r in rows]
    v = [x for x in v if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def tag_vs_depth(rows: list[dict], path: str | Path) -> Path:
    depth_rows = [r for r in rows if r["kind"] == "depth"]
    depths = sorted({r["depth"] for r in depth_rows})
    fig, axes = subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (pairs, label) in zip(axes, PAIRS):
        key = f"agent_{pairs}_time_at_goal"
        stats = [_stats([r.get(key) for r in depth_rows if r["depth"] == d]) for d in depths]
        mean, lo, hi = (np.array(s) for s in zip(*stats)) if stats else ([], [], [])
        ax.plot(depths, mean, "o-", label="mean over seeds")
        ax.fill_between(depths, lo, hi, alpha=0.25, label="min–max over seeds")
        for r in depth_rows:
            ax.plot(r["depth"], r.get(key, np.nan), ".", color="k", alpha=0.4)
        ceil = _ceiling(rows, pairs)
        if ceil is not None:
            ax.axhline(ceil, ls="--", color="gray", label="maze oracle")
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set_xlabel("depth (Dense layers in residual blocks)")
        ax.set_title(f"final time at goal, {label}")
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("time at goal")
    axes[0].legend(fontsize=8)
    return savefig(fig, path)


def learning_curves(curves: dict[str, list[dict]], nets: dict[str, dict], path: str | Path) -> Path:
    """`curves`: run label → metrics rows; `nets`: run label → {net, depth, kind}."""
    panels = [("eval_random_time_at_goal", "eval time at goal, random pairs"),
              ("eval_hard_time_at_goal", "eval time at goal, hard pair"),
              ("train_time_at_goal", "training episodes' time at goal")]
    fig, axes = subplots(1, len(panels), figsize=(15, 4), sharey=True)
    grouped: dict[str, list[list[dict]]] = defaultdict(list)
    for label, rows in curves.items():
        grouped[nets[label]["net"]].append(rows)
    order = sorted(grouped, key=lambda n: (nets_kind(nets, n), int(n.split("_")[0][1:]), n))
    for ax, (key, title) in zip(axes, panels):
        for net in order:
            runs = grouped[net]
            steps = sorted({r["env_steps"] for run in runs for r in run})
            vals = [[next((r.get(key) for r in run if r["env_steps"] == s), None) for run in runs] for s in steps]
            stats = np.array([_stats(v) for v in vals]) if vals else np.zeros((0, 3))
            if stats.size == 0 or np.all(np.isnan(stats[:, 0])):
                continue
            ls = "--" if nets_kind(nets, net) == "width" else "-"
            line, = ax.plot(steps, stats[:, 0], ls, label=net)
            ax.fill_between(steps, stats[:, 1], stats[:, 2], alpha=0.15, color=line.get_color())
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    axes[0].set_ylabel("time at goal")
    axes[0].legend(fontsize=8, title="network (dashed: widened)")
    return savefig(fig, path)


def nets_kind(nets: dict[str, dict], net: str) -> str:
    return next(v["kind"] for v in nets.values() if v["net"] == net)


def depth_vs_width(rows: list[dict], path: str | Path) -> Path:
    fig, ax = subplots(figsize=(6, 4))
    key = "agent_random_time_at_goal"
    for kind, style, label in (("depth", "o-", "deeper (width fixed)"), ("width", "s--", "wider (depth fixed)")):
        nets = sorted({(r["params"], r["net"]) for r in rows if r["kind"] == kind})
        if kind == "width":  # draw the widened nets from the shallow net they widen
            shallow = min(((r["depth"], r["params"], r["net"]) for r in rows if r["kind"] == "depth"), default=None)
            if shallow is not None:
                nets = [(shallow[1], shallow[2])] + nets
        stats = [_stats([r.get(key) for r in rows if r["net"] == n]) for _, n in nets]
        if not stats:
            continue
        x = [p for p, _ in nets]
        mean, lo, hi = (np.array(s) for s in zip(*stats))
        ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], fmt=style, capsize=3, label=label)
        for xi, yi, (_, n) in zip(x, mean, nets):
            ax.annotate(n, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ceil = _ceiling(rows, "random")
    if ceil is not None:
        ax.axhline(ceil, ls=":", color="gray", label="maze oracle")
    ax.set_xscale("log")
    ax.set_xlabel("parameters (actor + both critic encoders)")
    ax.set_ylabel("final time at goal, random pairs")
    ax.legend(fontsize=8)
    return savefig(fig, path)


def make_figures(summary: str | Path, run_dirs: Sequence[str | Path], out: dict[str, str | Path]) -> list[Path]:
    """`out` maps time_at_goal_vs_depth, learning_curves, depth_vs_width to PNG paths."""
    rows = read_parquet(summary).to_pylist()
    curves, nets = {}, {}
    for d in map(Path, run_dirs):
        name, seed = d.parent.name, d.name
        label = f"{name}/{seed}"
        curves[label] = read_parquet(d / "metrics.parquet").to_pylist()
        row = next((r for r in rows if r["net"] == name), None)
        nets[label] = {"net": name, "kind": row["kind"] if row else "depth"}
    return [tag_vs_depth(rows, out["time_at_goal_vs_depth"]), learning_curves(curves, nets, out["learning_curves"]),
            depth_vs_width(rows, out["depth_vs_width"])]
