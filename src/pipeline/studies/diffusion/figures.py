"""The study's figures: f_mem over training (raw and per n), timescales against n, sample
quality and losses, samples beside their nearest training images, and the random-features
model's loss curves."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from pipeline.io import read_parquet
from pipeline.plots import savefig, subplots
from pipeline.studies.diffusion.data import read_images


def _by(rows: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def _mean_curve(rows: list[dict], x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    pts = _by(rows, x)
    xs = np.array(sorted(k[0] for k in pts), dtype=float)
    ys = np.array([np.nanmean([r[y] for r in pts[(k,)]]) for k in xs])
    return xs, ys


def fmem_curves(evals: pa.Table, path: str | Path, per_n: bool, threshold: float) -> Path:
    """f_mem against training steps (or steps/n), one curve per n; CI band of the seed mean."""
    rows = evals.to_pylist()
    fig, ax = subplots(figsize=(6, 4))
    x = "steps_per_n" if per_n else "step"
    for (n,), rs in sorted(_by(rows, "n").items()):
        xs, ys = _mean_curve(rs, x, "f_mem")
        _, lo = _mean_curve(rs, x, "f_mem_lo")
        _, hi = _mean_curve(rs, x, "f_mem_hi")
        line, = ax.plot(xs, ys, marker="o", ms=3, label=f"n={n}")
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    ax.axhline(threshold, color="grey", ls=":", lw=1, label=f"τ_mem threshold {threshold:g}")
    ax.set_xscale("log")
    ax.set_xlabel("training steps / n" if per_n else "training steps")
    ax.set_ylabel("f_mem (fraction of samples copying a training image)")
    ax.set_title("memorisation " + ("against steps per training image" if per_n else "during training"))
    ax.legend(fontsize=8)
    return savefig(fig, path)


def timescales_plot(ts: pa.Table, fits: pa.Table, rf: pa.Table | None, path: str | Path) -> Path:
    """τ_gen, τ_mem and τ_loss against n (log-log) with the fitted slopes; RF model beside."""
    rows, fit_rows = ts.to_pylist(), fits.to_pylist()
    panels = 2 if rf is not None and rf.num_rows else 1
    fig, axes = subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)

    def draw(ax, data, model, keys, xlabel, ylabel, title):
        for key, marker in keys:
            pts = [(r["n"], r[key]) for r in data if math.isfinite(r[key])]
            if not pts:
                continue
            fit = next((f for f in fit_rows if f["model"] == model and f["timescale"] == key), None)
            label = key
            if fit and math.isfinite(fit["slope"]):
                ci = f" [{fit['ci_low']:.2f}, {fit['ci_high']:.2f}]" if math.isfinite(fit["ci_low"]) else ""
                label += f": slope {fit['slope']:.2f}{ci}"
            sc = ax.scatter(*zip(*pts), marker=marker, label=label)
            if fit and math.isfinite(fit["slope"]):
                ns = np.array(sorted({p[0] for p in pts}), dtype=float)
                ax.plot(ns, np.exp(fit["intercept"]) * ns ** fit["slope"], color=sc.get_facecolor()[0], lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)

    draw(axes[0][0], rows, "diffusion", [("tau_gen", "s"), ("tau_mem", "o"), ("tau_loss", "^")],
         "training-set size n", "training steps", "diffusion model timescales")
    if panels == 2:
        draw(axes[0][1], rf.to_pylist(), "random_features", [("tau_gen", "s"), ("tau_mem", "o")],
             "training-set size n", "gradient-flow time", "random-features model timescales")
    return savefig(fig, path)


def quality_plot(evals: pa.Table, path: str | Path) -> Path:
    """Fréchet distance to held-out images, and train/held-out denoising loss, over training."""
    rows = evals.to_pylist()
    fig, (a1, a2) = subplots(1, 2, figsize=(11, 4))
    for (n,), rs in sorted(_by(rows, "n").items()):
        xs, fd = _mean_curve(rs, "step", "fd")
        line, = a1.plot(xs, fd, marker="o", ms=3, label=f"n={n}")
        _, ltr = _mean_curve(rs, "step", "loss_train")
        _, lho = _mean_curve(rs, "step", "loss_heldout")
        a2.plot(xs, lho, color=line.get_color(), marker="o", ms=3, label=f"held-out n={n}")
        a2.plot(xs, ltr, color=line.get_color(), ls="--", label=f"train n={n}")
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("training steps")
    a1.set_ylabel("Fréchet distance (classifier features)")
    a1.set_title("sample quality vs held-out images")
    a1.legend(fontsize=8)
    a2.set_xscale("log")
    a2.set_xlabel("training steps")
    a2.set_ylabel("denoising loss (ε-MSE)")
    a2.set_title("training vs held-out denoising loss")
    a2.legend(fontsize=7)
    return savefig(fig, path)


def _pixels(table: pa.Table) -> np.ndarray:
    meta = table.schema.metadata or {}
    h, w = int(meta[b"height"]), int(meta[b"width"])
    return np.frombuffer(b"".join(table.column("pixels").to_pylist()), dtype=np.uint8).reshape(-1, h, w)


def sample_grid(early: str | Path, late: str | Path, subset: str | Path, path: str | Path,
                labels: tuple[str, str], columns: int = 8) -> Path:
    """Rows: early samples, their nearest training images, late samples, theirs."""
    train, _ = read_images(subset)
    fig, axes = subplots(4, columns, figsize=(1.2 * columns, 5.4), squeeze=False)
    for block, (src, label) in enumerate(zip((early, late), labels)):
        table = read_parquet(src)
        for c in range(columns):
            for r in (0, 1):
                axes[2 * block + r][c].axis("off")
        if table.num_rows == 0:
            axes[2 * block][0].set_title(f"{label}: no samples", fontsize=8, loc="left")
            continue
        pix = _pixels(table)
        nn = table.column("nn_index").to_numpy()
        mem = table.column("memorised").to_numpy()
        d1, d2 = table.column("d1").to_numpy(), table.column("d2").to_numpy()
        for c in range(min(columns, len(pix))):
            axes[2 * block][c].imshow(pix[c], cmap="gray", vmin=0, vmax=255)
            axes[2 * block][c].set_title(f"{d1[c] / d2[c]:.2f}" + (" ●" if mem[c] else ""), fontsize=7)
            axes[2 * block + 1][c].imshow(train[nn[c]], cmap="gray", vmin=0, vmax=255)
        axes[2 * block][0].text(-0.5, 0.5, f"{label}\nsamples", transform=axes[2 * block][0].transAxes,
                                ha="right", va="center", fontsize=8)
        axes[2 * block + 1][0].text(-0.5, 0.5, "nearest\ntraining", transform=axes[2 * block + 1][0].transAxes,
                                    ha="right", va="center", fontsize=8)
    fig.suptitle("samples (title: d1/d2, ● = memorised) and their nearest training images", fontsize=9)
    return savefig(fig, path)


def rf_plot(curves: pa.Table, gap_threshold: float, path: str | Path) -> Path:
    """RF model: train/test loss against time, and the train/test gap against time/n."""
    rows = curves.to_pylist()
    fig, (a1, a2) = subplots(1, 2, figsize=(11, 4))
    for (n,), rs in sorted(_by(rows, "n").items()):
        xs, te = _mean_curve(rs, "time", "test_loss")
        _, tr = _mean_curve(rs, "time", "train_loss")
        line, = a1.plot(xs, te, label=f"test n={n}")
        a1.plot(xs, tr, color=line.get_color(), ls="--", label=f"train n={n}")
        xn, gap = _mean_curve(rs, "time_per_n", "gap")
        a2.plot(xn, gap, color=line.get_color(), label=f"n={n}")
    a2.axhline(gap_threshold, color="grey", ls=":", lw=1, label="τ_mem threshold")
    for ax in (a1, a2):
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    a1.set_yscale("log")
    a2.set_yscale("symlog", linthresh=0.01)
    a1.set_xlabel("gradient-flow time τ")
    a1.set_ylabel("score-matching loss")
    a1.set_title("random features: train and test loss")
    a2.set_xlabel("τ / n")
    a2.set_ylabel("test − train loss (minus its value at τ = 0)")
    a2.set_title("memorisation gap against τ/n (collapse ⇔ τ_mem ∝ n)")
    return savefig(fig, path)


def make_figures(*, evals: str | Path, timescales: str | Path, fits: str | Path, rf_timescales: str | Path | None,
                 rf_curves: str | Path | None, early: str | Path, late: str | Path, subset: str | Path,
                 early_step: int, late_step: int, cfg: Mapping[str, Any], out: Mapping[str, str | Path]) -> None:
    """Every figure of the study from the analysis tables (keys of `out`: fmem_steps,
    fmem_steps_per_n, timescales, quality, samples, rf)."""
    ev = read_parquet(evals)
    thr = float(cfg["thresholds"]["mem_fraction"])
    fmem_curves(ev, out["fmem_steps"], per_n=False, threshold=thr)
    fmem_curves(ev, out["fmem_steps_per_n"], per_n=True, threshold=thr)
    rf_ts = read_parquet(rf_timescales) if rf_timescales else None
    timescales_plot(read_parquet(timescales), read_parquet(fits), rf_ts, out["timescales"])
    quality_plot(ev, out["quality"])
    sample_grid(early, late, subset, out["samples"], (f"step {early_step}", f"step {late_step}"))
    if "rf" in out:
        rf_plot(read_parquet(rf_curves), float(cfg["random_features"]["gap_thresholds"][0]), out["rf"])
