"""The study's three figures, drawn from the analysis Parquet files only.

- pass@k against k (log2 axis): base, teacher, every RL run (thin) and algorithm mean
  (thick), distilled models.
- coverage: which held-out problems each model ever solves (columns sorted by class, then
  base pass@1), with the problem classes marked.
- perplexity: the base model's per-token NLL of responses from base, RL and distilled models.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Mapping

import numpy as np

from pipeline.io import read_parquet
from pipeline.plots import savefig, subplots

COLORS = {"base": "black", "teacher": "0.55", "grpo": "tab:red", "rloo": "tab:blue", "distill": "tab:green"}


def _color(family: str) -> str:
    return COLORS.get(family, "tab:purple")


def plot_passk(passk_path: str, out: str, title: str = "") -> None:
    rows = read_parquet(passk_path).to_pylist()
    by_model: dict[str, list[tuple[int, float]]] = defaultdict(list)
    family = {}
    for r in rows:
        by_model[r["model"]].append((r["k"], r["pass_at_k"]))
        family[r["model"]] = r["family"]
    fig, ax = subplots(figsize=(6.4, 4.4))
    fam_curves: dict[str, list[np.ndarray]] = defaultdict(list)
    ks = None
    for name, pts in sorted(by_model.items()):
        pts.sort()
        ks = np.array([k for k, _ in pts])
        vals = np.array([v for _, v in pts])
        fam = family[name]
        if fam in ("base", "teacher"):
            ax.plot(ks, vals, color=_color(fam), lw=2.2, ls="--" if fam == "teacher" else "-", marker="o",
                    ms=3, label=name)
        else:
            ax.plot(ks, vals, color=_color(fam), lw=0.8, alpha=0.45)
            fam_curves[fam].append(vals)
    for fam, cs in sorted(fam_curves.items()):
        ax.plot(ks, np.mean(cs, axis=0), color=_color(fam), lw=2.2, marker="o", ms=3,
                label=f"{fam} (mean of {len(cs)} seeds)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k (held-out problems)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "pass@k: RL leads at small k, does base catch up at large k?", fontsize=10)
    savefig(fig, out)


def plot_coverage(coverage_path: str, out: str, k_max: int) -> None:
    rows = read_parquet(coverage_path).to_pylist()
    models = sorted({r["model"] for r in rows}, key=lambda m: (["base", "teacher"].index(m) if m in ("base", "teacher")
                                                                else 2, m))
    base = {r["pid"]: r for r in rows if r["model"] == "base"}
    pids = sorted(base, key=lambda p: (base[p]["klass"], -base[p]["c"] / base[p]["n"]))
    grid = np.zeros((len(models), len(pids)))
    cell = {(r["model"], r["pid"]): r[f"pass_at_{k_max}"] for r in rows}
    solved = {(r["model"], r["pid"]): r["solved"] for r in rows}
    for i, m in enumerate(models):
        for j, p in enumerate(pids):
            grid[i, j] = cell[(m, p)] if solved[(m, p)] else np.nan
    fig, ax = subplots(figsize=(max(6.0, len(pids) * 0.06 + 2), 0.35 * len(models) + 1.6))
    cmap = __import__("matplotlib").colormaps["viridis"].copy()
    cmap.set_bad("white")
    im = ax.imshow(grid, aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(models)), models, fontsize=8)
    classes = [base[p]["klass"] for p in pids]
    edges = [j for j in range(1, len(pids)) if classes[j] != classes[j - 1]]
    for e in edges:
        ax.axvline(e - 0.5, color="red", lw=0.8)
    starts = [0, *edges]
    ax.set_xticks([(s + e) / 2 - 0.5 for s, e in zip(starts, [*edges, len(pids)])],
                  [classes[s] for s in starts], fontsize=7)
    ax.set_xlabel(f"held-out problems (white: never solved in n samples; colour: pass@{k_max})")
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    ax.set_title("Coverage: which problems each model ever solves", fontsize=10)
    savefig(fig, out)


def plot_perplexity(perplexity_path: str, out: str) -> None:
    rows = read_parquet(perplexity_path).to_pylist()
    groups: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["family"] != "teacher":
            groups[r["family"]].append(r["nll_per_token"])
    order = sorted(groups, key=lambda f: (f != "base", f))
    fig, ax = subplots(figsize=(6.0, 4.0))
    ax.boxplot([groups[f] for f in order], showfliers=False)
    ax.set_xticks(range(1, len(order) + 1), [f"{f}\n(n={len(groups[f])})" for f in order])
    for i, f in enumerate(order, 1):
        ax.plot(i, np.mean(groups[f]), marker="D", color=_color(f))
    ax.set_ylabel("base model NLL per token of the response (log PPL)")
    ax.set_title("How likely are each model's responses under the base model?", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    savefig(fig, out)


def draw_all(paths: Mapping[str, str], outs: Mapping[str, str], k_max: int) -> None:
    plot_passk(paths["passk"], outs["passk"])
    plot_coverage(paths["coverage"], outs["coverage"], k_max)
    plot_perplexity(paths["perplexity"], outs["perplexity"])
