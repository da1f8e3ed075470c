"""Trajectory replay buffer with hindsight goals drawn a geometric number of steps ahead.

CRL learns which states follow which (state, action): the positive goal for a transition at time
i is the achieved goal at time i + k of the *same* trajectory, k ≥ 1 with P(k) ∝ γ^k truncated
at the trajectory's last stored step (as `flatten_crl_fn` in the paper's code). The buffer is a
ring over time with one column per env; trajectory ids tell where one episode ends and the next
begins, so early terminations (Gymnasium envs) are handled too.
"""
from __future__ import annotations

import math

import torch

from pipeline.runtime import place


def truncated_geometric(u: torch.Tensor, remaining: torch.Tensor, gamma: float) -> torch.Tensor:
    """Offsets k ∈ [1, L] with P(k) ∝ γ^k, by inverting the CDF (1 - γ^k) / (1 - γ^L) at u."""
    gl = torch.pow(torch.as_tensor(gamma, dtype=torch.float64), remaining.double())
    k = torch.ceil(torch.log1p(-u.double() * (1 - gl)) / math.log(gamma))
    return k.long().clamp(min=1).minimum(remaining)


class TrajectoryBuffer:
    """Stores (obs, action, achieved goal, trajectory id) per env and time step."""

    def __init__(self, capacity: int, num_envs: int, obs_dim: int, action_dim: int, goal_dim: int,
                 max_episode_length: int, device: str | torch.device = "cpu") -> None:
        if capacity < 2:
            raise ValueError(f"buffer capacity must be >= 2 time steps per env, got {capacity}")
        self.capacity, self.num_envs, self.horizon = capacity, num_envs, max_episode_length
        self.device = torch.device(device)
        self.obs = torch.zeros(capacity, num_envs, obs_dim, device=self.device)
        self.action = torch.zeros(capacity, num_envs, action_dim, device=self.device)
        self.achieved = torch.zeros(capacity, num_envs, goal_dim, device=self.device)
        self.traj = torch.full((capacity, num_envs), -1, dtype=torch.long, device=self.device)
        self.inserted = 0  # time steps inserted so far (logical time of the next insert)

    @property
    def size(self) -> int:
        return min(self.inserted, self.capacity)

    def insert(self, obs: torch.Tensor, action: torch.Tensor, achieved: torch.Tensor, traj: torch.Tensor) -> None:
        """Append one time step for every env (shapes [num_envs, ...])."""
        p = self.inserted % self.capacity
        self.obs[p], self.action[p], self.achieved[p], self.traj[p] = obs, action, achieved, traj
        self.inserted += 1

    def _remaining(self, t: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        """Steps of the same trajectory stored after logical time t (0 for the last one)."""
        ks = torch.arange(1, self.horizon, device=self.device)
        later = t[:, None] + ks[None, :]
        valid = later < self.inserted
        same = self.traj[later % self.capacity, env[:, None]] == self.traj[t % self.capacity, env][:, None]
        return (same & valid).long().cumprod(dim=1).sum(dim=1)

    def sample(self, batch_size: int, gamma: float, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A batch of (obs, action, goal) with goal = achieved goal `offset` steps later."""
        if not 0 < gamma < 1:
            raise ValueError(f"gamma must be in (0, 1), got {gamma}")
        if self.size < 2:
            raise ValueError("buffer holds fewer than two time steps; collect before sampling")
        oldest = self.inserted - self.size
        t = torch.empty(batch_size, dtype=torch.long, device=self.device)
        env = torch.empty_like(t)
        remaining = torch.zeros_like(t)
        todo = torch.ones(batch_size, dtype=torch.bool, device=self.device)
        for _ in range(100):  # resample the few draws that are the last step of their trajectory
            n = int(todo.sum())
            if n == 0:
                break
            t[todo] = torch.randint(oldest, self.inserted, (n,), generator=generator, device=self.device)
            env[todo] = torch.randint(0, self.num_envs, (n,), generator=generator, device=self.device)
            remaining[todo] = self._remaining(t[todo], env[todo])
            todo = remaining == 0
        if bool(todo.any()):
            raise RuntimeError("replay buffer holds no transition with a future step in its trajectory")
        u = torch.rand(batch_size, generator=generator, device=self.device)
        offset = truncated_geometric(u, remaining, gamma)
        p, q = t % self.capacity, (t + offset) % self.capacity
        return {"obs": self.obs[p, env], "action": self.action[p, env], "goal": self.achieved[q, env],
                "offset": offset, "t": t, "env": env}

    def state_dict(self) -> dict:
        return {"obs": self.obs, "action": self.action, "achieved": self.achieved, "traj": self.traj,
                "inserted": self.inserted}

    def load_state_dict(self, state: dict) -> None:
        for k in ("obs", "action", "achieved", "traj"):
            if state[k].shape != getattr(self, k).shape:
                raise ValueError(f"buffer checkpoint {k!r} has shape {tuple(state[k].shape)}, expected {tuple(getattr(self, k).shape)}")
            setattr(self, k, place(state[k], self.device))
        self.inserted = int(state["inserted"])
