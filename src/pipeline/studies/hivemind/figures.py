"""The study's three figures: repetition per model, the inter-model heatmap, and response
clusters for a few prompts (a 2-D projection coloured by model, with example texts)."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from pipeline.io import atomic_path, read_json, read_parquet  # noqa: E402
from pipeline.studies.hivemind.embed import embedding_matrix  # noqa: E402


def _save(fig, path: str | Path) -> None:
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def intra_distribution(intra: pa.Table, random_pairs: pa.Table, threshold: float, path: str | Path) -> None:
    """Per generator: histogram of per-prompt intra-model similarity vs random pairs, 0.8 line."""
    gens = sorted(set(intra.column("generator").to_pylist()))
    fig, axes = plt.subplots(len(gens), 1, figsize=(7, 1.9 * len(gens) + 0.6), sharex=True, squeeze=False)
    bins = np.linspace(-0.2, 1.0, 49)
    rp = random_pairs.to_pylist()
    rows = intra.to_pylist()
    for ax, g in zip(axes[:, 0], gens):
        v = np.array([r["intra"] for r in rows if r["generator"] == g], dtype=float)
        v = v[np.isfinite(v)]
        rnd = np.array([r["cosine"] for r in rp if r["generator"] == g], dtype=float)
        if rnd.size:
            ax.hist(rnd, bins=bins, density=True, color="0.7", label="random pairs (other prompts)")
        ax.hist(v, bins=bins, density=True, alpha=0.75, color="C0", label="within a prompt (per prompt)")
        ax.axvline(threshold, color="C3", ls="--", lw=1.2, label=f"paper's threshold {threshold}")
        share = float((v > threshold).mean()) if v.size else float("nan")
        ax.set_title(f"{g}: mean {v.mean():.2f} over {v.size} prompts, {share:.0%} above {threshold}",
                     fontsize=9, loc="left")
        ax.set_ylabel("density")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("cosine similarity of response embeddings")
    fig.suptitle("Intra-model repetition: mean pairwise similarity per prompt", fontsize=10)
    _save(fig, path)


def heatmap(summary_path: str | Path, path: str | Path) -> None:
    """Mean similarity between generators over shared prompts (diagonal: within a generator)."""
    matrix = read_json(summary_path)["matrix"]
    gens = matrix["generators"]
    m = np.array([[np.nan if x is None else x for x in row] for row in matrix["values"]], dtype=float)
    size = 1.1 * len(gens) + 2.5
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(np.ma.masked_invalid(m), vmin=0, vmax=1, cmap="viridis")
    for i in range(len(gens)):
        for j in range(len(gens)):
            if np.isfinite(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if m[i, j] < 0.6 else "black")
    ax.set_xticks(range(len(gens)), gens, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(gens)), gens, fontsize=8)
    fig.colorbar(im, ax=ax, label="mean cosine similarity")
    ax.set_title("Inter-model similarity (same prompt; blank: no shared prompts)", fontsize=10)
    _save(fig, path)


def _pca2(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=0)
    if x.shape[0] < 2:
        return np.zeros((x.shape[0], 2))
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    out = x @ vt[:2].T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


def projection(embeddings: pa.Table, generations: Sequence[str | Path], prompt_ids: Sequence[str],
               path: str | Path, wrap: int = 60, max_chars: int = 160) -> None:
    """For each prompt: responses of every generator in 2-D (PCA), with one example text each."""
    gen = pa.concat_tables([read_parquet(p) for p in generations])
    text = {(r["generator"], r["prompt_id"], r["sample"]): r["response"] for r in gen.to_pylist()}
    prompt_text = dict(zip(gen.column("prompt_id").to_pylist(), gen.column("prompt").to_pylist()))
    emb = embedding_matrix(embeddings)
    rows = embeddings.select(["generator", "prompt_id", "sample"]).to_pylist()
    gens = sorted({r["generator"] for r in rows})
    colour = {g: f"C{i % 10}" for i, g in enumerate(gens)}
    k = max(1, len(prompt_ids))
    fig, axes = plt.subplots(k, 2, figsize=(12, 3.6 * k), squeeze=False, layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1.3]})
    for (ax, tax), pid in zip(axes, prompt_ids):
        sel = [i for i, r in enumerate(rows) if r["prompt_id"] == pid]
        xy = _pca2(emb[sel].astype(np.float64))
        examples = []
        for g in gens:
            mine = [n for n, i in enumerate(sel) if rows[i]["generator"] == g]
            if not mine:
                continue
            ax.scatter(xy[mine, 0], xy[mine, 1], s=18, alpha=0.8, color=colour[g], label=g)
            first = rows[sel[mine[0]]]
            body = text[(g, pid, first["sample"])].replace("\n", " ")
            body = body if len(body) <= max_chars else body[:max_chars] + "…"
            examples.append((g, textwrap.fill(body, wrap)))
        ax.set_title(textwrap.shorten(f"{pid}: {prompt_text.get(pid, '')}", 70), fontsize=9, loc="left")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlabel("PC 1"), ax.set_ylabel("PC 2")
        ax.legend(fontsize=7, loc="best")
        tax.axis("off")
        y = 1.0
        for g, body in examples:
            tax.text(0, y, g, color=colour[g], fontsize=8, fontweight="bold", va="top", transform=tax.transAxes)
            tax.text(0, y - 0.07, body, fontsize=7, va="top", transform=tax.transAxes, family="serif")
            y -= 0.1 + 0.065 * (body.count("\n") + 1)
    fig.suptitle("Responses to the same prompt, coloured by model (PCA of sentence embeddings)", fontsize=10)
    _save(fig, path)


def pick_prompts(intra: pa.Table, k: int) -> list[str]:
    """The k prompts answered by the most generators, ties broken by highest mean similarity."""
    rows = [r for r in intra.to_pylist() if np.isfinite(r["intra"])]
    stats: dict[str, list[float]] = {}
    for r in rows:
        stats.setdefault(r["prompt_id"], []).append(r["intra"])
    ranked = sorted(stats, key=lambda p: (-len(stats[p]), -float(np.mean(stats[p])), p))
    return ranked[:k]


def make_figures(intra_path: str, random_path: str, summary_path: str, embeddings_path: str,
                 generations: Sequence[str], out: dict[str, str], threshold: float, n_prompts: int) -> None:
    intra = read_parquet(intra_path)
    intra_distribution(intra, read_parquet(random_path), threshold, out["intra"])
    heatmap(summary_path, out["heatmap"])
    projection(read_parquet(embeddings_path), generations, pick_prompts(intra, n_prompts), out["projection"])
