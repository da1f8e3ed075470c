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

RUN = re.compile(r"(?P<ffn>dense|moe)_(?P<gate>none|headwise|elementwise)_(?P<regime>main|stress|text)_s(?P<seed>\d+)")


def _key(path: str | Path) -> dict[str, Any]:
    m = RUN.search(Path(path).name)
    if not m:
        raise ValueError(f"unexpected run file name: {path}")
    return {**m.groupdict(), "seed": int(m.group("seed"))}


def load_evals(paths: list[str]) -> dict[tuple, dict[str, Any]]:
    """(ffn, gate, regime, seed) → {metric: scalar, "layers": {metric: per-layer list},
    "heads": {metric: [layers, heads] array}, "windows": {metric: per-validation-window array}}."""
    out: dict[tuple, dict[str, Any]] = {}
    for p in paths:
        k = _key(p)
        rows = read_parquet(p).to_pylist()
        d: dict[str, Any] = {r["metric"]: r["value"] for r in rows if r["layer"] == -1 and r["window"] == -1}
        per_layer: dict[str, list[float]] = defaultdict(list)
        per_head: dict[str, dict[tuple[int, int], float]] = defaultdict(dict)
        per_window: dict[str, dict[int, float]] = defaultdict(dict)
        for r in rows:
            if r["window"] >= 0:
                per_window[r["metric"]][r["window"]] = r["value"]
        for r in sorted((r for r in rows if r["layer"] >= 0), key=lambda r: r["layer"]):
            if r["head"] >= 0:
                per_head[r["metric"]][(r["layer"], r["head"])] = r["value"]
            else:
                per_layer[r["metric"]].append(r["value"])
        d["layers"] = dict(per_layer)
        d["windows"] = {m: np.array([w[i] for i in sorted(w)]) for m, w in per_window.items()}
        d["heads"] = {}
        for metric, cells in per_head.items():
            grid = np.full((max(i for i, _ in cells) + 1, max(j for _, j in cells) + 1), np.nan)
            for (i, j), v in cells.items():
                grid[i, j] = v
            d["heads"][metric] = grid
        out[(k["ffn"], k["gate"], k["regime"], k["seed"])] = d
    return out


def _pairs(evals, ffn: str, gate: str, regime: str, metric: str) -> tuple[list[float], list[float], list[int]]:
    seeds = sorted(s for (f, g, r, s) in evals if f == ffn and g == gate and r == regime)
    seeds = [s for s in seeds if (ffn, "none", regime, s) in evals]
    gated = [evals[(ffn, gate, regime, s)][metric] for s in seeds]
    vanilla = [evals[(ffn, "none", regime, s)][metric] for s in seeds]
    return gated, vanilla, seeds


def window_noise(evals, ffn: str, gate: str, regime: str, metrics: list[str]) -> tuple[float, float]:
    """(floor, shared_se) of the paired loss effect, from the losses per validation window.

    Every model is scored on the same windows, so gated − vanilla is taken window by window (a
    window's difficulty cancels). `floor`: the sampling SD of one seed's paired effect (the SE of
    its per-window differences; the metrics' variances add, their windows taken as independent).
    `shared_se`: the same windows serve every seed, so their sampling noise does not average out
    over seeds; it is the SE of the seed-averaged per-window differences (`pipeline.stats`).
    """
    per_seed, shared = [], 0.0
    for m in metrics:
        diffs = []
        for (f, g, r, s), d in sorted(evals.items()):
            if (f, g, r) != (ffn, gate, regime) or (ffn, "none", regime, s) not in evals:
                continue
            a, b = d["windows"].get(m), evals[(ffn, "none", regime, s)]["windows"].get(m)
            if a is None or b is None or a.shape != b.shape:
                raise ValueError(f"{m}: seed {s} of {ffn}/{gate} and vanilla were not scored on the same "
                                 "validation windows (re-run their evaluations)")
            if np.isfinite(a).all() and np.isfinite(b).all() and a.size > 1:
                diffs.append(a - b)
        if diffs:
            per_seed.append(np.mean([x.var(ddof=1) / x.size for x in diffs]))
            mean = np.mean(diffs, axis=0)
            shared += float(mean.var(ddof=1) / mean.size)
    return math.sqrt(float(np.sum(per_seed))), math.sqrt(shared)


def _windows(evals: dict, metric: str) -> int:
    return max((d["windows"][metric].size for d in evals.values() if metric in d["windows"]), default=0)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def sink_precondition(evals: dict, ffn: str, gate: str, ev: dict[str, Any]) -> tuple[tuple[bool, str], str]:
    """A sink exists in vanilla: Sink_1^eps reaches sink_min_rate, or first-token attention
    (queries t >= 1) exceeds sink_min_ratio × uniform. Returns (precondition, note)."""
    g_attn, van_attn, _ = _pairs(evals, ffn, gate, "main", "first_token_attn_mean")
    _, uni, _ = _pairs(evals, ffn, gate, "main", "first_token_attn_uniform")
    g_rate, van_rate, _ = _pairs(evals, ffn, gate, "main", "sink_rate")
    ratio = _mean(van_attn) / _mean(uni) if van_attn else float("nan")
    rate, eps = _mean(van_rate), ev["sink_eps"]
    holds = bool(rate >= ev["sink_min_rate"] or ratio > ev["sink_min_ratio"])
    sink = f"Sink_1^{eps} {rate:.2f}, first-token attention {ratio:.2f}× uniform"
    reason = (f"vanilla formed no attention sink ({sink}; needs Sink_1^{eps} >= {ev['sink_min_rate']} "
              f"or > {ev['sink_min_ratio']}× uniform)")
    note = f"vanilla {sink}; gated Sink_1^{eps} {_mean(g_rate):.2f}, {_mean(g_attn) / _mean(uni):.2f}× uniform"
    return (holds, reason), note


def activation_precondition(evals: dict, ffn: str, gate: str, ev: dict[str, Any]) -> tuple[tuple[bool, str], str]:
    """Vanilla has a massive activation: its BOS residual-norm peak exceeds massive_activation_min.
    The note adds the value-norm drain (BOS value norm over the median, smallest head)."""
    g_peak, van_peak, _ = _pairs(evals, ffn, gate, "main", "bos_resid_peak")
    g_drain, van_drain, _ = _pairs(evals, ffn, gate, "main", "bos_value_ratio_min")
    peak = _mean(van_peak)
    reason = (f"vanilla has no massive activation (BOS residual norm {peak:.1f}× the median, "
              f"needs > {ev['massive_activation_min']}×)")
    note = (f"BOS residual peak vanilla {peak:.1f}×, gated {_mean(g_peak):.1f}×; value-norm drain "
            f"(BOS/median, smallest head) vanilla {_mean(van_drain):.2f}, gated {_mean(g_drain):.2f}")
    return (bool(peak > ev["massive_activation_min"]), reason), note


def build_claims(evals: dict, cfg: dict[str, Any], scale: str) -> list[Claim]:
    gate, ev = cfg["gate"], cfg["eval"]
    claims: list[Claim] = []
    longest = max(ev["context_multipliers"])
    text = cfg["text"]["enabled"]  # the loss claim moves to the text pair: the main task is synthetic
    for ffn in cfg["ffns"]:
        def row(claim, metric, floor, precondition=(True, ""), regime="main", higher=False, note="", shared_se=0.0):
            g, v, _ = _pairs(evals, ffn, gate, regime, metric)
            claims.append(judge(study=STUDY, claim=f"{claim} ({ffn}, {gate} gate)", metric=metric, values=g,
                                baselines=v, scale=scale, higher_is_claimed=higher, floor=floor, shared_se=shared_se,
                                precondition=precondition, note=note))

        no_div = _no_divergence(evals, ffn, gate, "main")
        if not text:
            claims.append(_loss_claim(evals, ffn, gate, "main", scale))
        # No per-evaluation SE is recorded for the sink and activation metrics yet: their floor is 0.
        sink_pre, sink_note = sink_precondition(evals, ffn, gate, ev)
        row("less attention on the first token (no sink)", "first_token_attn_mean", 0.0, sink_pre, note=sink_note)
        act_pre, act_note = activation_precondition(evals, ffn, gate, ev)
        row("smaller massive activation (BOS residual-norm peak)", "bos_resid_peak", 0.0, act_pre, note=act_note)
        claims.append(_context_claim(evals, ffn, gate, longest, no_div, scale))
    if text:
        claims.insert(0, _loss_claim(evals, cfg["text"]["ffn"], gate, "text", scale))
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


def _no_divergence(evals: dict, ffn: str, gate: str, regime: str) -> tuple[bool, str]:
    _, van_div, _ = _pairs(evals, ffn, gate, regime, "diverged")
    return not any(van_div), "a vanilla run diverged at the base learning rate"


def _loss_claim(evals: dict, ffn: str, gate: str, regime: str, scale: str) -> Claim:
    """The gated model's validation loss is lower at equal tokens, paired window by window."""
    floor, shared = window_noise(evals, ffn, gate, regime, ["val_loss_x1"])
    g, v, _ = _pairs(evals, ffn, gate, regime, "val_loss_x1")
    where = ", text pair" if regime == "text" else ""
    return judge(study=STUDY, claim=f"lower validation loss at equal tokens ({ffn}, {gate} gate{where})",
                 metric="val_loss_x1", values=g, baselines=v, scale=scale, higher_is_claimed=False, floor=floor,
                 shared_se=shared, precondition=_no_divergence(evals, ffn, gate, regime),
                 note=f"paired over {_windows(evals, 'val_loss_x1')} validation windows: one seed's noise {floor:.2g}, "
                      f"the shared windows' {shared:.2g}")


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
    floor, shared = window_noise(evals, ffn, gate, "main", [beyond, "val_loss_x1"])
    own = math.sqrt(sum(_mean([d[f"{m}_se"] ** 2 for (f, g, r, _), d in evals.items() if (f, g, r) == (ffn, "none", "main")])
                        for m in (beyond, "val_loss_x1")))  # vanilla's own windows: nothing to pair with
    own = own if math.isfinite(own) else 0.0  # no finite vanilla run: the interval is undefined anyway
    van = t_interval(v_deg, floor=own, shared_se=own)
    pre = no_div
    if pre[0] and not (van.finite and van.low > 0):
        pre = (False, f"vanilla's loss does not rise beyond the training length (degradation {van.estimate:.3f}, "
                      f"95% CI [{van.low:.3f}, {van.high:.3f}]): nothing for the gate to improve")
    return judge(study=STUDY, claim=claim, metric=metric, values=g_deg, baselines=v_deg, scale=scale,
                 higher_is_claimed=False, floor=floor, shared_se=shared, precondition=pre,
                 note=f"value: gated degradation, baseline: vanilla degradation; ×{longest} length")


def sink_figure(evals: dict, cfg: dict[str, Any], style: dict, path: str) -> None:
    """Top: first-token attention (queries t >= 1) of every (layer, head), every seed, one dot each,
    with the mean per layer; bottom: the gate per head at trigger queries vs elsewhere."""
    gate, ffns = cfg["gate"], cfg["ffns"]
    fig, axes = subplots(2, len(ffns), figsize=(5 * len(ffns), 7), squeeze=False)
    fig.suptitle(f"Attention sink per (layer, head); Sink_1^{cfg['eval']['sink_eps']} in the legend")
    uni = np.mean([d["first_token_attn_uniform"] for d in evals.values()]) if evals else np.nan
    for col, ffn in enumerate(ffns):
        ax, gax = axes[0][col], axes[1][col]
        for offset, g in ((-0.12, "none"), (0.12, gate)):
            runs = [d for (f, gg, r, _), d in sorted(evals.items()) if f == ffn and gg == g and r == "main"]
            grids = [d["heads"]["first_token_attn_head"] for d in runs if "first_token_attn_head" in d.get("heads", {})]
            if not grids:
                continue
            rate = _mean([d.get("sink_rate", np.nan) for d in runs])
            for grid in grids:
                L, H = grid.shape
                x = np.repeat(np.arange(L), H) + offset + np.tile(np.linspace(-0.08, 0.08, H), L)
                ax.scatter(x, grid.ravel(), s=10, alpha=0.5, color=style[g]["color"])
            ax.plot(np.arange(grids[0].shape[0]) + offset, np.nanmean([gr.mean(1) for gr in grids], axis=0),
                    marker="o", color=style[g]["color"], label=f"{style[g]['label']} (Sink_1 {rate:.2f})")
            if g != "none":
                for key, ls, lab in (("gate_trigger_head", "-", "trigger queries"), ("gate_other_head", "--", "other")):
                    gg = [d["heads"][key] for d in runs if key in d.get("heads", {})]
                    if gg:
                        m = np.nanmean(gg, axis=0)
                        for h in range(m.shape[1]):
                            gax.plot(range(m.shape[0]), m[:, h], ls=ls, marker="o", color=style[g]["color"],
                                     alpha=0.4 + 0.6 / (h + 1), label=f"{lab}, head {h}" if m.shape[1] <= 4 or h == 0 else None)
        ax.axhline(uni, color="grey", ls=":", label="uniform")
        layers = range(cfg["model"]["n_layers"])
        ax.set(title=ffn, xlabel="layer", ylabel="attention on first token (t ≥ 1)", xticks=layers)
        ax.legend(fontsize=7)
        gax.set(xlabel="layer", ylabel=f"{gate} gate value (solid: trigger queries)", ylim=(0, 1), xticks=layers)
        if gax.lines:
            gax.legend(fontsize=6)
        else:
            gax.text(0.5, 0.5, "no gate values by position class (text source)", ha="center", transform=gax.transAxes)
    savefig(fig, path)


def figures(evals: dict, metrics: dict[tuple, Any], cfg: dict[str, Any], out: dict[str, str]) -> None:
    gate = cfg["gate"]
    style = {"none": dict(color="tab:red", label="vanilla"), gate: dict(color="tab:blue", label=f"{gate} gate")}
    ffns = cfg["ffns"]

    def per_ffn(title: str):
        fig, axes = subplots(1, len(ffns), figsize=(5 * len(ffns), 3.6), squeeze=False)
        fig.suptitle(title)
        return fig, axes[0]

    fig, axes = per_ffn("Training loss (dashed: learning-rate stress run; dotted: the text pair)")
    for ax, ffn in zip(axes, ffns):
        for (f, g, regime, s), tab in sorted(metrics.items()):
            if f != ffn:
                continue
            ax.plot(tab["step"], tab["loss"], color=style[g]["color"], alpha=0.6,
                    ls={"stress": "--", "text": ":"}.get(regime, "-"),
                    label=f"{style[g]['label']} {regime} s{s}")
        ax.set(title=ffn, xlabel="step", ylabel="loss", yscale="log")
        ax.legend(fontsize=6)
    savefig(fig, out["loss"])

    sink_figure(evals, cfg, style, out["sink"])
    for key, metric, ylabel in (("activation", "max_abs_hidden", "max |hidden|"),):
        fig, axes = per_ffn(f"{ylabel} per layer")
        for ax, ffn in zip(axes, ffns):
            for g in ("none", gate):
                runs = [d["layers"].get(metric, []) for (f, gg, r, _), d in evals.items()
                        if f == ffn and gg == g and r == "main"]
                runs = [r for r in runs if r]
                if runs:
                    m = np.mean(runs, axis=0)
                    ax.plot(range(len(m)), m, marker="o", **style[g])
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
            claims_out: str, figure_out: dict[str, str]) -> list[Claim]:
    evals = load_evals(eval_paths)
    metrics = {}
    for p in metric_paths:
        k = _key(Path(p).parent)
        metrics[(k["ffn"], k["gate"], k["regime"], k["seed"])] = read_parquet(p, columns=["step", "loss"]).to_pydict()
    claims = build_claims(evals, cfg, scale)
    write_claims(claims, claims_out)
    figures(evals, metrics, cfg, figure_out)
    return claims
