"""Evaluate one trained model: loss, attention sink, massive activations, gate sparsity,
loss spikes and perplexity beyond the training length.

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
from pipeline.data.text import TokenShards
from pipeline.io import read_parquet, write_parquet
from pipeline.models.transformer import Stats
from pipeline.studies.gated_attention import STUDY
from pipeline.studies.gated_attention.train import build_model
from pipeline.tracking import Tracker
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


def uniform_first_token_share(seq_len: int) -> float:
    """Mean attention on position 0 if every query attended uniformly to its causal prefix."""
    return float(np.mean(1.0 / np.arange(1, seq_len + 1)))


@torch.no_grad()
def mean_loss(model: torch.nn.Module, windows: torch.Tensor, batch_size: int, device: torch.device) -> float:
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        b = runtime.place(windows[i:i + batch_size], device)
        logits = model(b[:, :-1]).float()
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b[:, 1:].reshape(-1), reduction="sum").item()
        count += b[:, 1:].numel()
    return total / count


def evaluate(spec: dict[str, Any]) -> pa.Table:
    """spec: weights, metrics, manifest, model, gate, ffn, eval, threads, device, out, tracking, wildcards."""
    device = runtime.setup(spec["threads"], spec["device"], seed=0)
    init("cpu" if device.type == "cpu" else "cuda")
    val = TokenShards(spec["manifest"], "val")
    model = build_model(spec["model"], spec["gate"], spec["ffn"], val.vocab_size, ep_size=1)
    model.load_state_dict(load_file(Path(spec["weights"])))
    runtime.place(model, device).eval()
    ev, seq_len = spec["eval"], spec["model"]["seq_len"]
    train_losses = read_parquet(spec["metrics"], columns=["loss"]).column("loss").to_numpy()
    finite = bool(np.all(np.isfinite(train_losses))) and all(
        bool(torch.isfinite(p).all()) for p in model.parameters())
    rows: list[dict[str, Any]] = []

    def add(metric: str, value: float, layer: int = -1) -> None:
        rows.append({"metric": metric, "layer": layer, "value": float(value)})

    add("diverged", 0.0 if finite else 1.0)
    add("spikes", count_spikes(train_losses, ev["spike_factor"], ev["spike_window"]))
    add("train_loss_final", float(train_losses[-1]) if len(train_losses) else math.nan)
    add("max_train_loss", float(np.nanmax(train_losses)) if len(train_losses) else math.nan)
    n = ev["batches"] * ev["batch_size"]
    for mult in ev["context_multipliers"]:
        length = mult * seq_len
        if finite:
            loss = mean_loss(model, val.fixed(max(1, n // mult), length - 1), max(1, ev["batch_size"] // mult), device)
        else:
            loss = math.nan
        add(f"val_loss_x{mult}", loss)
        add(f"val_ppl_x{mult}", math.exp(loss) if math.isfinite(loss) and loss < 50 else math.inf)
    stats = Stats()
    if finite:
        with torch.no_grad():
            model(runtime.place(val.fixed(ev["batch_size"], seq_len - 1)[:, :-1], device), stats=stats)
    for layer, v in enumerate(stats.first_token_attn):
        add("first_token_attn", v, layer)
    for layer, v in enumerate(stats.max_abs_hidden):
        add("max_abs_hidden", v, layer)
    for layer, v in enumerate(stats.rms_hidden):
        add("rms_hidden", v, layer)
    for layer, v in enumerate(stats.mean_gate):
        add("mean_gate", v, layer)
    add("first_token_attn_mean", np.mean(stats.first_token_attn) if finite else math.nan)
    add("first_token_attn_uniform", uniform_first_token_share(seq_len))
    add("max_abs_hidden_max", max(stats.max_abs_hidden) if finite else math.nan)
    add("rms_hidden_median", float(np.median(stats.rms_hidden)) if finite else math.nan)
    add("mean_gate_mean", np.mean(stats.mean_gate) if stats.mean_gate else math.nan)
    table = pa.Table.from_pylist(rows)
    write_parquet(table, spec["out"])
    with Tracker(STUDY, "evaluate", wildcards=spec["wildcards"], params={"weights": spec["weights"]},
                 uri=spec["tracking"]["uri"], enabled=spec["tracking"]["enabled"]) as tracker:
        tracker.log_metrics({r["metric"]: r["value"] for r in rows if r["layer"] == -1}, step=0)
    return table
