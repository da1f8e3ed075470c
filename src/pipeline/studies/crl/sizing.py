"""Parameter counts of the CRL networks in closed form, without importing torch.

The width control ("a shallow network widened to the parameter count of a deep one") must be
known when Snakemake builds the DAG, so the count lives here as arithmetic; a test checks it
against the real torch modules in `network.py`.
"""
from __future__ import annotations

from dataclasses import dataclass


def check_depth(depth: int) -> None:
    if depth < 4 or depth % 4:
        raise ValueError(f"depth must be a positive multiple of 4 (Dense layers in residual blocks of 4), got {depth}")


def mlp_params(in_dim: int, out_dim: int, width: int, depth: int) -> int:
    """Dense(in→w)+LayerNorm, depth Dense(w→w)+LayerNorm in blocks of 4, Dense(w→out)."""
    check_depth(depth)
    dense = lambda a, b: a * b + b  # noqa: E731
    return dense(in_dim, width) + 2 * width + depth * (dense(width, width) + 2 * width) + dense(width, out_dim)


@dataclass(frozen=True)
class Dims:
    """Sizes of the environment interface: state, action, goal (achieved-goal space)."""

    obs: int
    action: int
    goal: int


def agent_params(dims: Dims, width: int, depth: int, repr_dim: int = 64,
                 actor_width: int | None = None, actor_depth: int | None = None) -> dict[str, int]:
    """Parameters of the actor, the two critic encoders φ(s,a), ψ(g), and their total."""
    aw, ad = actor_width or width, actor_depth or depth
    actor = mlp_params(dims.obs + dims.goal, 2 * dims.action, aw, ad)
    critic = mlp_params(dims.obs + dims.action, repr_dim, width, depth) + mlp_params(dims.goal, repr_dim, width, depth)
    return {"actor": actor, "critic": critic, "total": actor + critic + 1}  # +1: log α


def matched_width(target: int, dims: Dims, depth: int, repr_dim: int = 64,
                  actor_width: int | None = None, actor_depth: int | None = None) -> int:
    """The width at `depth` whose total parameter count is closest to `target`.

    `actor_width`/`actor_depth` of None mean the actor follows the critic (as in `agent_params`).
    """
    def total(w: int) -> int:
        return agent_params(dims, w, depth, repr_dim, actor_width, actor_depth)["total"]

    hi = 1
    while total(hi) < target:
        hi *= 2
    lo = max(1, hi // 2)
    while hi - lo > 1:  # smallest w with total(w) >= target lies in (lo, hi]
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if total(mid) < target else (lo, mid)
    return min((lo, hi), key=lambda w: (abs(total(w) - target), w))
