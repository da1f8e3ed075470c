"""Attention-sink and massive-activation metrics as the field measures them.

- First-token attention: mean probability on position 0 over queries t >= 1 (query 0 can
  attend nowhere else, so counting it inflates the sink).
- Sink_k^eps (Gu et al., ICLR 2025, "When Attention Sink Emerges"): the share of (layer,
  head) pairs whose mean attention on token k over queries t >= k exceeds eps (0.3), on
  sequences of T = 64 tokens. Causal attention on the first T positions of a longer
  sequence equals attention on a T-token sequence, so a longer evaluation can be cut to T.
- BOS residual-norm peak and value-norm drain (Guo et al. 2024, "Active-Dormant Attention
  Heads"): a sink token carries a residual state far larger than the others' and a value
  vector far smaller, so attending to it writes (almost) nothing.

Inputs are the batch-mean tensors `pipeline.models.transformer.Stats` collects: attention
[H, T, S] per layer, value norms [H, S], residual norms [T], gates [B, T, H].
"""
from __future__ import annotations

import numpy as np
import torch


def first_token_attn_per_head(attn: list[torch.Tensor]) -> np.ndarray:
    """[layers, heads]: mean attention on position 0 over queries t >= 1."""
    return np.stack([a[:, 1:, 0].mean(-1).numpy() for a in attn])


def uniform_first_token_share(length: int) -> float:
    """First-token attention if every query t >= 1 of a `length`-token input spread it uniformly."""
    return float(np.mean(1.0 / np.arange(2, length + 1))) if length > 1 else 1.0


def sink_scores(attn: list[torch.Tensor], k: int = 0, window: int = 64) -> np.ndarray:
    """[layers, heads]: Gu et al.'s alpha_k, mean attention on token k over queries k <= t < window."""
    out = []
    for a in attn:
        T = min(window, a.shape[-2])
        if k >= T:
            raise ValueError(f"token {k} lies outside the {T}-token window")
        out.append(a[:, k:T, k].mean(-1).numpy())
    return np.stack(out)


def sink_rate(attn: list[torch.Tensor], k: int = 0, eps: float = 0.3, window: int = 64) -> float:
    """Sink_k^eps: share of (layer, head) pairs with alpha_k > eps."""
    return float((sink_scores(attn, k, window) > eps).mean())


def bos_residual_ratio(resid_norm: list[torch.Tensor]) -> np.ndarray:
    """[layers]: the residual norm at position 0 over the median norm at positions >= 1."""
    return np.array([float(r[0] / r[1:].median()) for r in resid_norm])


def bos_value_ratio(value_norm: list[torch.Tensor]) -> np.ndarray:
    """[layers, heads]: the value norm at position 0 over the median at positions >= 1 (< 1: drained)."""
    return np.stack([(v[:, 0] / v[:, 1:].median(dim=-1).values).numpy() for v in value_norm])


def gate_by_class(gate: list[torch.Tensor], mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """([layers, heads] mean gate where `mask` [B, T] holds, same where it does not)."""
    mask = mask.bool()
    inside = np.stack([g[mask].mean(0).numpy() for g in gate])
    outside = np.stack([g[~mask].mean(0).numpy() for g in gate])
    return inside, outside
