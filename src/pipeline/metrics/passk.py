"""pass@k: the unbiased estimator of "at least one of k samples is correct".

From n ≥ k samples of which c are correct (Chen et al. 2021, used by Yue et al. 2025):
    pass@k = 1 − C(n−c, k) / C(n, k) = 1 − ∏_{i=n−c+1..n} (1 − k/i).
The binomials overflow for n in the hundreds; the product, summed in log space with
log1p and closed with expm1, stays exact to rounding for any n. Vectorised over problems:
n, c and k broadcast against each other.
"""
from __future__ import annotations

import numpy as np


def pass_at_k(n, c, k) -> np.ndarray:
    """Unbiased pass@k for arrays of per-problem sample counts `n` and correct counts `c`.

    Returns a float array of the broadcast shape (a 0-d array for scalar inputs).
    Raises ValueError when k < 1, k > n, c < 0 or c > n for any problem.
    """
    n, c, k = np.broadcast_arrays(np.asarray(n), np.asarray(c), np.asarray(k))
    for name, a in (("n", n), ("c", c), ("k", k)):
        if a.size and not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError(f"pass_at_k: {name} must hold integers, got {a.ravel()[:5]}")
    n, c, k = n.astype(np.int64), c.astype(np.int64), k.astype(np.int64)
    if np.any(k < 1):
        raise ValueError("pass_at_k: k must be ≥ 1")
    if np.any(k > n):
        raise ValueError(f"pass_at_k: k must be ≤ n (k={int(k.max())}, n={int(n.min())}); draw more samples")
    if np.any((c < 0) | (c > n)):
        raise ValueError("pass_at_k: need 0 ≤ c ≤ n for every problem")
    if n.size == 0:
        return np.ones(n.shape, dtype=np.float64)
    # Terms i = n−c+1 .. n, laid out along a trailing axis of length max(c); padded with 0.
    width = int(c.max())
    if width == 0:
        return np.zeros(n.shape, dtype=np.float64)
    j = np.arange(width)
    i = (n - c)[..., None] + 1 + j  # [..., width]
    live = j < c[..., None]
    safe_i = np.where(live, i, 1)  # avoid division by zero in dead slots
    ratio = k[..., None] / safe_i
    # n − c < k  ⇒ some factor (1 − k/i) ≤ 0: the product is 0 and pass@k is exactly 1.
    certain = (n - c) < k
    logs = np.zeros(i.shape, dtype=np.float64)
    use = live & ~certain[..., None]
    logs[use] = np.log1p(-ratio[use])
    out = np.asarray(-np.expm1(logs.sum(axis=-1)), dtype=np.float64)
    out[certain] = 1.0
    out[c == 0] = 0.0
    return out


def pass_at_k_curve(n, c, ks) -> np.ndarray:
    """pass@k for every k in `ks` (rows) and every problem (columns)."""
    n, c = np.asarray(n), np.asarray(c)
    return np.stack([pass_at_k(n, c, int(k)) for k in ks]) if len(ks) else np.empty((0, n.size))


def powers_of_two(k_max: int) -> list[int]:
    """1, 2, 4, … up to k_max (k_max itself is appended if it is not a power of two)."""
    if k_max < 1:
        raise ValueError(f"k_max must be ≥ 1, got {k_max}")
    ks, k = [], 1
    while k <= k_max:
        ks.append(k)
        k *= 2
    if ks[-1] != k_max:
        ks.append(k_max)
    return ks
