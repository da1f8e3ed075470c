"""Evaluate one trained model: loss, attention sink, massive activations, gate sparsity,
loss spikes and perplexity beyond the training length.

Rows are (metric, layer, head, window, value); layer, head and window are -1 where a value is not
per layer, per head or per validation window. The losses are also kept per window: every model is
scored on the same windows, so the analysis can pair gated and vanilla window by window. The sink is measured as the field does (`pipeline.metrics.attention`): query 0
excluded from the first-token mean, Gu et al.'s Sink_1^eps per (layer, head), the BOS
residual-norm peak and value-norm drain; on Bigram-Backcopy the loss and the gate are also
split by position class (backcopy targets / trigger queries vs the rest).

A diverged run is evaluated too: its metrics are non-finite and `diverged` is 1, which the
analysis judges instead of crashing on.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from pipeline import runtime
from pipeline.io import read_parquet, write_parquet
from pipeline.metrics import attention as am
from pipeline.models.transformer import Stats
from pipeline.studies.gated_attention.specs import EvalSpec
from pipeline.studies.gated_attention.train import build_model, class_losses, data_source
from pipeline.train.checkpoint import load_file
from pipeline.train.distributed import init


def count_spikes(losses: np.ndarray, factor: float, window: int) -> int:
    """Steps whose loss exceeds `factor` × the median of the previous `window` steps (or is non-finite)."""
    spikes = 0
    for i in range(window, len(losses)):
        ref = np.median(losses[i - window:i])
        if not np.isfinite(losses[i]) or (np.isfinite(ref) and losses[i] > factor * ref):
            spikes += 1
    return spikes


@torch.no_grad()
def position_losses(model: torch.nn.Module, windows: torch.Tensor, batch_size: int,
                    device: torch.device) -> np.ndarray:
    """Next-token loss per window and target position, [windows, positions].

    Scoring only the positions beyond the training length (`[:, seq_len - 1:]`) keeps the
    long-context measure from inheriting the in-distribution gain of a whole-window mean.
    """
    out = []
    for i in range(0, len(windows), batch_size):
        b = runtime.place(windows[i:i + batch_size], device)
        logits = model(b[:, :-1]).float()
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b[:, 1:].reshape(-1), reduction="none")
        out.append(nll.view(b.shape[0], -1).cpu().numpy())
    return np.concatenate(out)


def row(metric: str, value: float, layer: int = -1, head: int = -1, window: int = -1) -> dict[str, Any]:
    return {"metric": metric, "layer": layer, "head": head, "window": window, "value": float(value)}


def loss_rows(metric: str, per_window: np.ndarray) -> list[dict[str, Any]]:
    """A loss over validation windows: its mean, its standard error (the evaluation's sampling
    noise) and one row per window, which the analysis pairs across models."""
    x = np.asarray(per_window, dtype=float)
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return [row(metric, x.mean()), row(f"{metric}_se", se), *(row(metric, v, window=w) for w, v in enumerate(x))]


def evaluate(spec: EvalSpec, weights: str, metrics: str, data_path: str, out: str, device: torch.device) -> pa.Table:
    """Every per-run metric of one trained model, as rows (metric, layer, head, window, value) written to `out`."""
    init("cpu" if device.type == "cpu" else "cuda")
    val = data_source({**spec.data, "path": data_path}, "val")
    model = build_model(spec.model, spec.gate, spec.ffn, val.vocab_size, ep_size=1)
    model.load_state_dict(load_file(Path(weights)))
    runtime.place(model, device).eval()
    ev, seq_len = spec.eval, spec.model["seq_len"]
    train_losses = read_parquet(metrics, columns=["loss"]).column("loss").to_numpy()
    finite = bool(np.all(np.isfinite(train_losses))) and all(
        bool(torch.isfinite(p).all()) for p in model.parameters())
    rows: list[dict[str, Any]] = []

    def add(metric: str, value: float, layer: int = -1, head: int = -1) -> None:
        rows.append(row(metric, value, layer, head))

    def add_heads(metric: str, values: np.ndarray) -> None:
        for (layer, head), v in np.ndenumerate(values):
            add(metric, v, layer, head)

    add("diverged", 0.0 if finite else 1.0)
    add("spikes", count_spikes(train_losses, ev["spike_factor"], ev["spike_window"]))
    add("train_loss_final", float(train_losses[-1]) if len(train_losses) else math.nan)
    add("max_train_loss", float(np.nanmax(train_losses)) if len(train_losses) else math.nan)
    n = ev["batches"] * ev["batch_size"]
    for mult in ev["context_multipliers"]:
        length = mult * seq_len
        windows = max(1, n // mult)  # a diverged run gets as many (NaN) windows as the others, to stay paired
        per = (position_losses(model, val.fixed(windows, length - 1), max(1, ev["batch_size"] // mult), device)
               if finite else np.full((windows, length - 1), math.nan))
        rows += loss_rows(f"val_loss_x{mult}", per.mean(axis=1))
        loss = float(per.mean(axis=1).mean())
        add(f"val_ppl_x{mult}", math.exp(loss) if math.isfinite(loss) and loss < 50 else math.inf)
        if mult > 1:  # only the positions beyond the training length (seq_len - 1 inputs in training)
            rows += loss_rows(f"val_loss_beyond_x{mult}", per[:, seq_len - 1:].mean(axis=1))
    stats = Stats()
    probe = val.fixed(ev["batch_size"], seq_len - 1)
    if finite:
        with torch.no_grad():
            logits = model(runtime.place(probe[:, :-1], device), stats=stats)
    for layer, v in enumerate(stats.first_token_attn):
        add("first_token_attn", v, layer)
    for layer, v in enumerate(stats.max_abs_hidden):
        add("max_abs_hidden", v, layer)
    for layer, v in enumerate(stats.rms_hidden):
        add("rms_hidden", v, layer)
    for layer, v in enumerate(stats.mean_gate):
        add("mean_gate", v, layer)
    nan = math.nan
    add("first_token_attn_mean", np.mean(stats.first_token_attn) if finite else nan)
    add("first_token_attn_uniform", am.uniform_first_token_share(probe.shape[1] - 1))
    add("max_abs_hidden_max", max(stats.max_abs_hidden) if finite else nan)
    add("rms_hidden_median", float(np.median(stats.rms_hidden)) if finite else nan)
    add("mean_gate_mean", np.mean(stats.mean_gate) if stats.mean_gate else nan)
    if finite:
        add_heads("first_token_attn_head", am.first_token_attn_per_head(stats.attn))
        window = min(ev["sink_window"], probe.shape[1] - 1)
        add_heads("sink_score_head", am.sink_scores(stats.attn, 0, window))
        add("sink_rate", am.sink_rate(stats.attn, 0, ev["sink_eps"], window))
        bos = am.bos_residual_ratio(stats.resid_norm)
        for layer, v in enumerate(bos):
            add("bos_resid_ratio", v, layer)
        add("bos_resid_peak", bos.max())
        drain = am.bos_value_ratio(stats.value_norm)
        add_heads("bos_value_ratio_head", drain)
        add("bos_value_ratio_min", drain.min())
    else:
        for metric in ("sink_rate", "bos_resid_peak", "bos_value_ratio_min"):
            add(metric, nan)
    copies = getattr(val, "copy_targets", None)
    if copies is not None:
        inputs = probe[:, :-1]
        if finite:
            for name, v in class_losses(logits.cpu(), probe, copies(probe)).items():
                add(f"val_{name}", v)
        if stats.gate:
            trigger = val.is_trigger[inputs]  # queries that must copy: the paper's gate should open there
            inside, outside = am.gate_by_class(stats.gate, trigger)
            add_heads("gate_trigger_head", inside)
            add_heads("gate_other_head", outside)
            add("gate_trigger_mean", inside.mean())
            add("gate_other_mean", outside.mean())
    table = pa.Table.from_pylist(rows)
    write_parquet(table, out)
    return table
