"""Memorisation of training images by a generative model: the nearest-neighbour ratio test.

A generated sample counts as a copy of the training set when its nearest training image is
much closer than the second nearest: d1 < ratio * d2 (pixel-space L2, ratio = 1/3 as in
Bonnaire et al. and Yoon et al.). A sample equal to a training image (d1 == 0) also counts
even when that image is duplicated in the training set (d2 == 0 too).

The search is blocked over samples and training images, so memory stays at
O(chunk x chunk) floats whatever the sizes (50k training images x 10k samples is fine);
candidate neighbours are re-ranked with exact distances so that the ratio does not suffer
from the cancellation error of the matrix-product formula of `torch.cdist`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

CANDIDATES = 4  # approximate neighbours kept per sample before the exact re-ranking


class Neighbours(NamedTuple):
    d1: torch.Tensor  # [S] distance to the nearest training image
    d2: torch.Tensor  # [S] distance to the second nearest (inf when train has one image)
    idx1: torch.Tensor  # [S] index of the nearest training image


def _as_matrix(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.dim() < 2:
        raise ValueError(f"{name}: expected a batch of images [N, ...], got shape {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        t = t.float()
    return t.reshape(t.shape[0], int(np.prod(t.shape[1:])))


def nearest_two(
    samples: torch.Tensor | np.ndarray, train: torch.Tensor | np.ndarray, chunk: int | None = 2048
) -> Neighbours:
    """Distances to the two nearest training images for every sample, in bounded memory.

    `chunk` is the block size (rows of samples and of training images); None computes the
    whole distance matrix at once.
    """
    s = _as_matrix(samples, "samples")
    t = _as_matrix(train, "train").to(s.dtype)
    if s.shape[1] != t.shape[1]:
        raise ValueError(f"samples have {s.shape[1]} values per image but train has {t.shape[1]}")
    if t.shape[0] == 0:
        raise ValueError("train is empty")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be a positive number of rows, got {chunk}")
    k = min(CANDIDATES, t.shape[0])
    bs = s.shape[0] if chunk is None else chunk
    bt = t.shape[0] if chunk is None else chunk
    t = t.to(s.device)
    dev = s.device
    d1 = torch.empty(s.shape[0], dtype=s.dtype, device=dev)
    d2 = torch.full((s.shape[0],), math.inf, dtype=s.dtype, device=dev)
    idx1 = torch.empty(s.shape[0], dtype=torch.long, device=dev)
    for i in range(0, s.shape[0], max(bs, 1)):
        block = s[i : i + bs]
        best_d = torch.full((block.shape[0], k), math.inf, dtype=s.dtype, device=dev)
        best_i = torch.zeros((block.shape[0], k), dtype=torch.long, device=dev)
        for j in range(0, t.shape[0], bt):
            dist = torch.cdist(block, t[j : j + bt])
            cand_d = torch.cat([best_d, dist], dim=1)
            cand_i = torch.cat([best_i, torch.arange(j, j + dist.shape[1], device=dev).expand(block.shape[0], -1)], dim=1)
            best_d, pos = cand_d.topk(k, dim=1, largest=False)
            best_i = cand_i.gather(1, pos)
        # exact re-ranking of the candidates: ||s - t|| computed from the difference
        exact = (block[:, None, :] - t[best_i]).norm(dim=2)
        exact, order = exact.sort(dim=1)
        d1[i : i + bs] = exact[:, 0]
        if k > 1:
            d2[i : i + bs] = exact[:, 1]
        idx1[i : i + bs] = best_i.gather(1, order)[:, 0]
    return Neighbours(d1.cpu(), d2.cpu(), idx1.cpu())


def is_memorised(d1: torch.Tensor, d2: torch.Tensor, ratio: float = 1 / 3) -> torch.Tensor:
    """Boolean per sample: d1 < ratio * d2, or an exact copy (d1 == 0)."""
    return (d1 < ratio * d2) | (d1 == 0)


def bootstrap_fraction(flags: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of a 0/1 vector (samples resampled with replacement)."""
    flags = np.asarray(flags, dtype=float)
    if flags.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    # counts of resampled ones ~ Binomial(N, p_hat) is exactly the bootstrap distribution of
    # the sum of N draws with replacement from a 0/1 vector; no N x n_boot matrix needed.
    means = rng.binomial(flags.size, flags.mean(), size=n_boot) / flags.size
    alpha = (1 - level) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))


def memorization_fraction(
    samples: torch.Tensor | np.ndarray,
    train: torch.Tensor | np.ndarray,
    ratio: float = 1 / 3,
    chunk: int | None = 2048,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Fraction of samples that copy a training image, with a bootstrap 95% CI.

    Returns (fraction, ci_low, ci_high).
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    nb = nearest_two(samples, train, chunk=chunk)
    flags = is_memorised(nb.d1, nb.d2, ratio).numpy()
    lo, hi = bootstrap_fraction(flags, n_boot=n_boot, seed=seed)
    return float(flags.mean()), lo, hi
