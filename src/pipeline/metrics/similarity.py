"""Cosine-similarity statistics over sets of embeddings (the Hivemind paper's metrics).

Repetition within one model is the mean cosine over the upper triangle of a set's
similarity matrix (each unordered pair once, no self-pairs); homogeneity across models is
the mean over all cross pairs of two sets; "how many queries are homogeneous" is the share
of per-query values above a threshold, with a bootstrap CI over queries. The random-pair
baseline pairs responses from different groups (queries), the paper's reference point.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from pipeline.stats import bootstrap_interval


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [n, dim], got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{name} has a zero vector: cosine similarity is undefined")
    return x / norms


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """All cosine similarities between the rows of `a` and of `b` (default: `a` itself)."""
    ua = _unit_rows(a, "a")
    ub = ua if b is None else _unit_rows(b, "b")
    if ua.shape[1] != ub.shape[1]:
        raise ValueError(f"embedding widths differ: {ua.shape[1]} vs {ub.shape[1]}")
    return ua @ ub.T


def mean_pairwise_cosine(emb: np.ndarray) -> float:
    """Mean cosine over the n·(n−1)/2 distinct pairs of rows; NaN for fewer than two rows.

    Computed from the sum of unit vectors s: Σ_{i<j} u_i·u_j = (|s|² − n) / 2, which is the
    upper triangle of the similarity matrix without forming it (O(n·dim)).
    """
    emb = np.asarray(emb)
    n = emb.shape[0] if emb.ndim == 2 else 0
    if n < 2:
        return math.nan
    s = _unit_rows(emb, "emb").sum(axis=0)
    return float((s @ s - n) / (n * (n - 1)))


def mean_cross_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine over all len(a)·len(b) pairs (one row from each set); NaN if either is empty.

    Equal to (Σ u_a)·(Σ u_b) / (n_a·n_b) for unit vectors: O((n_a + n_b)·dim).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] == 0 or b.shape[0] == 0:
        return math.nan
    ua, ub = _unit_rows(a, "a"), _unit_rows(b, "b")
    if ua.shape[1] != ub.shape[1]:
        raise ValueError(f"embedding widths differ: {ua.shape[1]} vs {ub.shape[1]}")
    return float(ua.sum(axis=0) @ ub.sum(axis=0) / (ua.shape[0] * ub.shape[0]))


def share_above(
    values: Sequence[float],
    threshold: float,
    *,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Share of finite values strictly above `threshold`, with a percentile bootstrap CI.

    Returns (share, ci_low, ci_high); all NaN when there is no finite value, and the CI is
    NaN for a single value.
    """
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    above = (x > threshold).astype(float)
    iv = bootstrap_interval(lambda i: float(above[i].mean()), x.size, seed=seed, n_boot=n_boot, level=level)
    return (float(above.mean()), iv.low, iv.high)


def random_pair_cosines(
    emb: np.ndarray,
    groups: Sequence,
    n_pairs: int,
    *,
    seed: int = 0,
    other: np.ndarray | None = None,
    other_groups: Sequence | None = None,
) -> np.ndarray:
    """Cosines of `n_pairs` random pairs whose two rows belong to different groups.

    With `other`, the second row of each pair is drawn from `other` (a second model), so the
    baseline matches an inter-model comparison. Pairs are drawn with replacement; raises if
    no pair of different groups exists.
    """
    a = _unit_rows(emb, "emb")
    ga = np.asarray(groups)
    b, gb = (a, ga) if other is None else (_unit_rows(other, "other"), np.asarray(other_groups))
    if ga.shape[0] != a.shape[0] or gb.shape[0] != b.shape[0]:
        raise ValueError("groups must have one label per embedding row")
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be ≥ 1, got {n_pairs}")
    if np.unique(np.concatenate([ga, gb])).size < 2:
        raise ValueError("random pairs need at least two different groups")
    rng = np.random.default_rng(seed)
    out = np.empty(0)
    # Rejection sampling: draw in rounds, keep pairs from different groups.
    for _ in range(100):
        i = rng.integers(0, a.shape[0], size=2 * n_pairs)
        j = rng.integers(0, b.shape[0], size=2 * n_pairs)
        keep = ga[i] != gb[j]
        out = np.concatenate([out, np.einsum("ij,ij->i", a[i[keep]], b[j[keep]])])
        if out.size >= n_pairs:
            return out[:n_pairs]
    raise ValueError("could not draw enough pairs from different groups")
