"""The paper's analytic random-features model of score learning, as a cheap CPU experiment.

Score model s_A(x) = A·tanh(W x / √d) / √p with W ∈ R^{p×d} fixed Gaussian and A ∈ R^{d×p}
learned from A = 0 by gradient flow on the denoising score-matching loss at one diffusion
time t (Ornstein–Uhlenbeck forward process, x_t = e^{-t} x_0 + √Δ_t ξ, Δ_t = 1 - e^{-2t}):

    L(A) = (1/d) E ||√Δ_t s_A(x_t) + ξ||²,   x_0 ~ N(0, I_d).

The training loss averages over n training points × `noise_draws` fixed noise draws each; the
test loss over fresh points and noise. L is quadratic in A, so the flow has a closed form in
the eigenbasis of the feature second moment U = E[φφᵀ]: each eigen-direction λ is learned on
the timescale d / (2 Δ_t λ). The spectrum of the training U has a bulk of small eigenvalues
tied to individual training points; their timescale grows with n, which is the paper's
mechanism for τ_mem ∝ n while τ_gen (set by the population directions) does not move.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from pipeline.io import write_parquet
from pipeline.progress import progress


def features(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """φ(x) = tanh(W x / √d) / √p, rows of x → rows of φ."""
    p, d = W.shape
    return np.tanh(x @ W.T / np.sqrt(d)) / np.sqrt(p)


def flow_solution(F: np.ndarray, xi: np.ndarray, delta: float, times: np.ndarray):
    """Closed-form gradient flow of A from zero on the empirical loss of (features F, noise ξ).

    dA/dτ = -∇L(A) = -(2/d)(Δ A U + √Δ Vᵀ) with U = FᵀF/N, V = Fᵀξ/N. A stays in the row
    space of F, so the flow is solved in the eigenbasis Q of U restricted to that space
    (obtained from the N×N Gram matrix when N < p). Yields (τ, A(τ) expressed as B with
    A = B Qᵀ, and Q).
    """
    N, p = F.shape
    d = xi.shape[1]
    if N <= p:
        lam, P = np.linalg.eigh(F @ F.T / N)
        keep = lam > 1e-12 * max(lam.max(), 1e-300)
        lam, P = lam[keep], P[:, keep]
        Q = F.T @ P / np.sqrt(lam * N)
    else:
        lam, Q = np.linalg.eigh(F.T @ F / N)
        keep = lam > 1e-12 * max(lam.max(), 1e-300)
        lam, Q = lam[keep], Q[:, keep]
    VtQ = (xi.T @ F / N) @ Q  # d × r
    c = 2.0 * delta / d
    for tau in times:
        # per direction: B = B*(1 - exp(-c λ τ)), B* = -Vᵀq / (√Δ λ)
        B = -(VtQ * (-np.expm1(-c * lam * tau) / lam)) / np.sqrt(delta)
        yield tau, B, Q


def dsm_loss(FQ: np.ndarray, B: np.ndarray, xi: np.ndarray, delta: float) -> float:
    """(1/d) mean ||√Δ A φ + ξ||² with Aφ = B (Qᵀφ) and FQ = F Q precomputed."""
    r = np.sqrt(delta) * FQ @ B.T + xi
    return float((r**2).sum() / r.size)


def run_one(n: int, seed: int, cfg: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Training and test loss along the flow for one training set of size n."""
    d, p, t = int(cfg["d"]), int(cfg["p"]), float(cfg["t"])
    m, n_test = int(cfg["noise_draws"]), int(cfg["n_test"])
    delta = 1.0 - np.exp(-2.0 * t)
    rng = np.random.default_rng([int(cfg["seed"]), seed, n])
    W = rng.standard_normal((p, d))
    x0 = np.repeat(rng.standard_normal((n, d)), m, axis=0)
    xi = rng.standard_normal(x0.shape)
    F = features(W, np.exp(-t) * x0 + np.sqrt(delta) * xi)
    xe, xie = rng.standard_normal((n_test, d)), rng.standard_normal((n_test, d))
    Fe = features(W, np.exp(-t) * xe + np.sqrt(delta) * xie)
    times = np.logspace(np.log10(cfg["time_min"]), np.log10(cfg["time_max"]), int(cfg["n_times"]))
    train, test = [], []
    FQ = FeQ = None
    for tau, B, Q in flow_solution(F, xi, delta, times):
        if FQ is None:
            FQ, FeQ = F @ Q, Fe @ Q
        train.append(dsm_loss(FQ, B, xi, delta))
        test.append(dsm_loss(FeQ, B, xie, delta))
    return {"time": times, "train_loss": np.array(train), "test_loss": np.array(test),
            "train_loss0": float((xi**2).mean()), "test_loss0": float((xie**2).mean())}


def rf_curves(cfg: Mapping[str, Any]) -> pa.Table:
    """Loss curves for every n in cfg['sizes'] and seed in cfg['seeds']."""
    rows: dict[str, list] = {k: [] for k in ("n", "seed", "time", "time_per_n", "train_loss", "test_loss", "gap")}
    jobs = [(n, s) for n in cfg["sizes"] for s in cfg["seeds"]]
    for n, s in progress(jobs, desc="random features"):
        r = run_one(int(n), int(s), cfg)
        gap0 = r["test_loss0"] - r["train_loss0"]  # finite-sample offset at A = 0
        k = len(r["time"])
        rows["n"] += [int(n)] * k
        rows["seed"] += [int(s)] * k
        rows["time"] += r["time"].tolist()
        rows["time_per_n"] += (r["time"] / n).tolist()
        rows["train_loss"] += r["train_loss"].tolist()
        rows["test_loss"] += r["test_loss"].tolist()
        rows["gap"] += (r["test_loss"] - r["train_loss"] - gap0).tolist()
    return pa.table(rows)


def write_rf_curves(cfg: Mapping[str, Any], out: str | Path) -> Path:
    return write_parquet(rf_curves(cfg), out)
