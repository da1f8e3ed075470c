"""Judge the gated-attention claims from the evaluations, and draw the figures."""
from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.claims import Claim, judge, write_claims
from pipeline.io import read_parquet
from pipeline.plots import savefig, subplots
from pipeline.stats import t_interval
from pipeline.studies.gated_attention import STUDY
from pipeline.tracking import Tracker

RUN = re.compile(r"(?P<ffn>dense|moe)_(?P<gate>none|headwise|elementwise)_(?P<regime>main|stress)_s(?P<seed>\d+)")


def _key(path: str | Path) -> dict[str, Any]:
    m = RUN.search(Path(path).name)
    if not m:
        raise ValueError(f"unexpected run file name: {path}")
    return {**m.groupdict(), "seed": int(m.group("seed"))}


def load_evals(paths: list[str]) -> dict[tuple, dict[str, Any]]:
    """(ffn, gate, regime, seed) → {metric: scalar, metric@layer: per-layer list}."""
    out: dict[tuple, dict[str, Any]] = {}
    for p in paths:
        k = _key(p)
        rows = read_parquet(p).to_pylist()
        d: dict[str, Any] = {r["metric"]: r["value"] for r in rows if r["layer"] == -1}
        per_layer: dict[str, list[float]] = defaultdict(list)
        for r in sorted((r for r in rows if r["layer"] >= 0), key=lambda r: r["layer"]):
            per_layer[r["metric"]].append(r["value"])
        d["layers"] = dict(per_layer)
        out[(k["ffn"], k["gate"], k["regime"], k["seed"])] = d
    return out


def _pairs(evals, ffn: str, gate: str, regime: str, metric: str) -> tuple[list[float], list[float], list[int]]:
    seeds = sorted(s for (f, g, r, s) in evals if f == ffn and g == gate and r == regime)
    seeds = [s for s in seeds if (ffn, "none", regime, s) in evals]
    gated = [evals[(ffn, gate, regime, s)][metric] for s in seeds]
    vanilla = [evals[(ffn, "none", regime, s)][metric] for s in seeds]
    return gated, vanilla, seeds


def _se_floor(evals, ffn: str, gate: str, regime: str, metrics: list[str]) -> float:
    """Sampling SD of one evaluation of a paired difference of `metrics` (their SEs over
    validation windows, added in quadrature for both models, averaged over seeds)."""
    var = 0.0
    for m in metrics:
        for g in (gate, "none"):
            se = [d.get(f"{m}_se", math.nan) for (f, gg, r, _), d in evals.items() if (f, gg, r) == (ffn, g, regime)]
            se = [x for x in se if math.isfinite(x)]
            var += float(np.mean(np.square(se))) if se else 0.0
    return math.sqrt(var)


def build_claims(evals: dict, cfg: dict[str, Any], scale: str) -> list[Claim]:
    gate, ev = cfg["gate"], cfg["eval"]
    claims: list[Claim] = []
    longest = max(ev["context_multipliers"])
    for ffn in cfg["ffns"]:
        def row(claim, metric, floor, precondition=(True, ""), regime="main", higher=False, note=""):
            g, v, _ = _pairs(evals, ffn, gate, regime, metric)
            claims.append(judge(study=STUDY, claim=f"{claim} ({ffn}, {gate} gate)", metric=metric, values=g,
                                baselines=v, scale=scale, higher_is_claimed=higher, floor=floor,
                                precondition=precondition, note=note))

        _, van_div, _ = _pairs(evals, ffn, gate, "main", "diverged")
        no_div = (not any(van_div), "a vanilla run diverged at the base learning rate")
        row("lower validation loss at equal tokens", "val_loss_x1",
            _se_floor(evals, ffn, gate, "main", ["val_loss_x1"]), no_div)
        _, van_attn, _ = _pairs(evals, ffn, gate, "main", "first_token_attn_mean")
        _, uni, _ = _pairs(evals, ffn, gate, "main", "first_token_attn_uniform")
        ratio = float(np.nanmean(van_attn) / np.nanmean(uni)) if van_attn else float("nan")
        sink = (bool(ratio > ev["sink_min_ratio"]),
                f"vanilla formed no attention sink (first-token attention {ratio:.2f}× uniform, "
                f"needs > {ev['sink_min_ratio']}×)")
        row("less attention on the first token (no sink)", "first_token_attn_mean", 0.0, sink,
            note=f"vanilla sink strength {ratio:.2f}× uniform")
        _, van_max, _ = _pairs(evals, ffn, gate, "main", "max_abs_hidden_max")
        _, van_rms, _ = _pairs(evals, ffn, gate, "main", "rms_hidden_median")
        mratio = float(np.nanmean(np.asarray(van_max) / np.asarray(van_rms))) if van_max else float("nan")
        massive = (bool(mratio > ev["massive_activation_min"]),
                   f"vanilla has no massive activations (max |h| = {mratio:.1f}× median RMS, "
                   f"needs > {ev['massive_activation_min']}×)")
        row("smaller maximum hidden activation", "max_abs_hidden_max", 0.0, massive,
            note=f"vanilla max/RMS {mratio:.1f}")
        claims.append(_context_claim(evals, ffn, gate, longest, no_div, scale))
    st = cfg["stress"]
    if st["enabled"]:
        ffn = st["ffn"]
        for k, d in evals.items():
            if k[2] == "stress":
                d["instability"] = d["spikes"] + d["diverged"]
        g, v, _ = _pairs(evals, ffn, gate, "stress", "instability")
        unstable = (any(x > 0 for x in v), f"vanilla neither spiked nor diverged at lr {st['lr']} "
                    f"(clip {st['grad_clip']}): the instability needs more depth, width or steps")
        # Counts: one run's count has a Poisson SD of about sqrt(mean count), and never less than one event.
        floor = max(1.0, math.sqrt(float(np.mean(g) + np.mean(v)))) if g else 1.0
        claims.append(judge(study=STUDY, claim=f"fewer loss spikes/divergence at high learning rate ({ffn}, {gate} gate)",
                            metric="loss spikes + diverged", values=g, baselines=v, scale=scale,
                            higher_is_claimed=False, floor=floor, precondition=unstable,
                            note=f"lr {st['lr']}, grad clip {st['grad_clip']}; noise floor {floor:.2g} events per run"))
    return claims


def _context_claim(evals: dict, ffn: str, gate: str, longest: int, no_div: tuple[bool, str], scale: str) -> Claim:
    """RoPE extrapolation: the gated model's loss rises less beyond the training length.

    Per seed, degradation = loss on the positions beyond the training length − loss at ×1
    (paired on one model); effect = vanilla's degradation − gated's. No context-extension
    method (YaRN) is implemented, so this is plain RoPE extrapolation, not the paper's setting.
    """
    claim = f"smaller loss increase beyond the training length, RoPE extrapolation without YaRN ({ffn}, {gate} gate)"
    metric = f"val_loss_beyond_x{longest} − val_loss_x1 (positions beyond the training length only)"
    if longest == 1:
        return judge(study=STUDY, claim=claim, metric=metric, values=[], baselines=[], scale=scale,
                     higher_is_claimed=False, floor=0.0, precondition=(False, "no context multiplier above 1"))
    beyond = f"val_loss_beyond_x{longest}"
    g_far, v_far, _ = _pairs(evals, ffn, gate, "main", beyond)
    g_one, v_one, _ = _pairs(evals, ffn, gate, "main", "val_loss_x1")
    g_deg, v_deg = np.subtract(g_far, g_one), np.subtract(v_far, v_one)
    floor = _se_floor(evals, ffn, gate, "main", [beyond, "val_loss_x1"])
    van = t_interval(v_deg, floor=floor / math.sqrt(2))
    pre = no_div
    if pre[0] and not (van.finite and van.low > 0):
        pre = (False, f"vanilla's loss does not rise beyond the training length (degradation {van.estimate:.3f}, "
                      f"95% CI [{van.low:.3f}, {van.high:.3f}]): nothing for the gate to improve")
    return judge(study=STUDY, claim=claim, metric=metric, values=g_deg, baselines=v_deg, scale=scale,
                 higher_is_claimed=False, floor=floor, precondition=pre,
                 note=f"value: gated degradation, baseline: vanilla degradation; ×{longest} length")


def figures(evals: dict, metrics: dict[tuple, Any], cfg: dict[str, Any], out: dict[str, str]) -> None:
    gate = cfg["gate"]
    style = {"none": dict(color="tab:red", label="vanilla"), gate: dict(color="tab:blue", label=f"{gate} gate")}
    ffns = cfg["ffns"]

    def per_ffn(title: str):
        fig, axes = subplots(1, len(ffns), figsize=(5 * len(ffns), 3.6), squeeze=False)
        fig.suptitle(title)
        return fig, axes[0]

    fig, axes = per_ffn("Training loss (mean over seeds; dashed: learning-rate stress run)")
    for ax, ffn in zip(axes, ffns):
        for (f, g, regime, s), tab in sorted(metrics.items()):
            if f != ffn:
                continue
            ax.plot(tab["step"], tab["loss"], color=style[g]["color"], alpha=0.6,
                    ls="--" if regime == "stress" else "-",
                    label=f"{style[g]['label']} {regime} s{s}")
        ax.set(title=ffn, xlabel="step", ylabel="loss", yscale="log")
        ax.legend(fontsize=6)
    savefig(fig, out["loss"])

    for key, metric, ylabel in (("sink", "first_token_attn", "attention on first token"),
                                ("activation", "max_abs_hidden", "max |hidden|")):
        fig, axes = per_ffn(f"{ylabel} per layer")
        for ax, ffn in zip(axes, ffns):
            for g in ("none", gate):
                runs = [d["layers"].get(metric, []) for (f, gg, r, _), d in evals.items()
                        if f == ffn and gg == g and r == "main"]
                runs = [r for r in runs if r]
                if runs:
                    m = np.mean(runs, axis=0)
                    ax.plot(range(len(m)), m, marker="o", **style[g])
            if metric == "first_token_attn":
                uni = [d["first_token_attn_uniform"] for d in evals.values()]
                ax.axhline(np.mean(uni), color="grey", ls=":", label="uniform")
            ax.set(title=ffn, xlabel="layer", ylabel=ylabel)
            ax.legend(fontsize=7)
        savefig(fig, out[key])

    fig, axes = per_ffn("Perplexity beyond the training length")
    mults = cfg["eval"]["context_multipliers"]
    for ax, ffn in zip(axes, ffns):
        for g in ("none", gate):
            runs = [[d[f"val_ppl_x{m}"] for m in mults] for (f, gg, r, _), d in evals.items()
                    if f == ffn and gg == g and r == "main"]
            if runs:
                ax.plot(mults, np.mean(runs, axis=0), marker="o", **style[g])
        ax.set(title=ffn, xlabel="context / training length", ylabel="validation perplexity", xscale="log", xticks=mults)
        ax.set_xticklabels([f"{m}×" for m in mults])
        ax.legend(fontsize=7)
    savefig(fig, out["context"])


def analyse(eval_paths: list[str], metric_paths: list[str], cfg: dict[str, Any], scale: str,
            claims_out: str, figure_out: dict[str, str], tracking: dict[str, Any] | None = None) -> list[Claim]:
    evals = load_evals(eval_paths)
    metrics = {}
    for p in metric_paths:
        k = _key(Path(p).parent)
        metrics[(k["ffn"], k["gate"], k["regime"], k["seed"])] = read_parquet(p, columns=["step", "loss"]).to_pydict()
    claims = build_claims(evals, cfg, scale)
    write_claims(claims, claims_out)
    figures(evals, metrics, cfg, figure_out)
    tracking = tracking or {"uri": None, "enabled": False}
    with Tracker(STUDY, "analyse", params=cfg, uri=tracking["uri"], enabled=tracking["enabled"]) as tracker:
        for path in [claims_out, *figure_out.values()]:
            tracker.log_artifact(path)
    return claims
