"""What the diffusion study will run, computed from config alone (no torch import).

Snakemake calls these at DAG build time: the training budget of each size n grows with n
(τ_mem grows with n), and the checkpoint steps are log-spaced up to that budget, so one
evaluation job per (n, seed, step) can be declared before any training has run.
"""
from __future__ import annotations

from typing import Any, Mapping


def max_steps(n: int, train: Mapping[str, Any]) -> int:
    """Training steps for a subset of n images: max(min_steps, steps_per_image · n)."""
    return max(int(train["min_steps"]), int(round(float(train["steps_per_image"]) * n)))


def export_steps(n: int, study: Mapping[str, Any]) -> list[int]:
    """Log-spaced checkpoint steps first·2^(k/per_octave) up to max_steps(n), plus the last step."""
    last = max_steps(n, study["train"])
    first = int(study["checkpoints"]["first"])
    per_octave = float(study["checkpoints"]["per_octave"])
    if first < 1 or per_octave <= 0:
        raise ValueError("checkpoints.first must be >= 1 and checkpoints.per_octave > 0")
    steps, k = set(), 0
    while (s := int(round(first * 2 ** (k / per_octave)))) < last:
        steps.add(s)
        k += 1
    steps.add(last)
    return sorted(steps)


def batch_size(n: int, train: Mapping[str, Any]) -> int:
    """Draws (image, t, ε) per step: always `train.batch`.

    The paper uses min(512, n) images per step, which for n ≥ batch is what `train.py`
    does (distinct images). For the tiny n of CPU runs, min(batch, n) leaves too few noise
    draws per step to learn the small-noise score at all (measured: n=8 with 8 draws showed
    no memorisation in 8k steps, with 128 draws f_mem was 0.39), so images repeat instead.
    Each image still carries weight 1/n in the loss, which is what makes τ_mem ∝ n.
    """
    del n
    return int(train["batch"])


def evaluations(study: Mapping[str, Any]) -> list[tuple[int, int, int]]:
    """Every (n, seed, step) to evaluate."""
    return [(n, s, step) for n in study["sizes"] for s in study["seeds"] for step in export_steps(n, study)]
