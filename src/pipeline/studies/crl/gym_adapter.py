"""Gymnasium goal-conditioned envs (e.g. Gymnasium-Robotics AntMaze/PointMaze) behind the
interface of `envs.PointMaze`, so the paper preset can train on MuJoCo physics.

Gymnasium and Gymnasium-Robotics are an optional extra (`pip install .[robotics]`) and are
imported only when this backend is chosen. A goal env returns dict observations
{observation, achieved_goal, desired_goal}; the CRL state is `[achieved_goal, observation]`,
so the achieved goal is the state's first `goal_dim` entries and the goal is `desired_goal`.
The envs run on CPU in a Python loop (MuJoCo is not vectorised); tensors go to `device`.
Resuming a run restarts episodes (MuJoCo state is not checkpointed): resume is exact only for
the torch maze backend.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from pipeline.studies.crl.envs import StepOut


def _import_gymnasium():
    try:
        import gymnasium
    except ImportError as exc:
        raise ImportError(
            "env.backend 'gymnasium' needs the optional extra: pip install '.[robotics]' "
            "(gymnasium-robotics and mujoco)") from exc
    try:
        import gymnasium_robotics

        gymnasium.register_envs(gymnasium_robotics)
    except ImportError:
        pass  # plain Gymnasium goal envs still work
    return gymnasium


class GymGoalEnv:
    """`num_envs` copies of one goal-conditioned Gymnasium env stepped in lockstep."""

    def __init__(self, make_one: Callable[[], Any], num_envs: int, *, episode_length: int, goal_radius: float,
                 hard_options: dict | None = None, device: str | torch.device = "cpu") -> None:
        self.envs = [make_one() for _ in range(num_envs)]
        self.num_envs, self.episode_length, self.goal_radius = num_envs, episode_length, goal_radius
        self.hard_options, self.device = hard_options, torch.device(device)
        space = self.envs[0].observation_space
        try:
            self.goal_dim = int(np.prod(space["desired_goal"].shape))
            self.obs_dim = self.goal_dim + int(np.prod(space["observation"].shape))
        except (KeyError, TypeError) as exc:
            raise ValueError("a goal env needs a Dict observation space with observation, achieved_goal and "
                             "desired_goal") from exc
        self.action_dim = int(np.prod(self.envs[0].action_space.shape))
        self.goal_indices = tuple(range(self.goal_dim))
        self._low = torch.as_tensor(self.envs[0].action_space.low, dtype=torch.float32)
        self._high = torch.as_tensor(self.envs[0].action_space.high, dtype=torch.float32)
        self.traj_id = torch.arange(num_envs, device=self.device)
        self.next_traj_id = num_envs
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.hard = False
        self._obs = torch.zeros(num_envs, self.obs_dim, device=self.device)
        self.goal = torch.zeros(num_envs, self.goal_dim, device=self.device)
        self._frozen = torch.zeros(num_envs, dtype=torch.bool, device=self.device)

    def check_dims(self, obs: int, action: int, goal: int) -> None:
        want, got = (obs, action, goal), (self.obs_dim, self.action_dim, self.goal_dim)
        if want != got:
            raise ValueError(f"studies.crl.env.dims {{obs, action, goal}} = {want} but the env has {got}")

    def _split(self, o: dict) -> tuple[torch.Tensor, torch.Tensor]:
        state = np.concatenate([np.ravel(o["achieved_goal"]), np.ravel(o["observation"])])
        return (torch.as_tensor(state, dtype=torch.float32, device=self.device),
                torch.as_tensor(np.ravel(o["desired_goal"]), dtype=torch.float32, device=self.device))

    def _reset_one(self, i: int, seed: int | None) -> None:
        options = self.hard_options if self.hard else None
        o, _ = self.envs[i].reset(seed=seed, options=options)
        self._obs[i], self.goal[i] = self._split(o)
        self.t[i] = 0
        self.traj_id[i] = self.next_traj_id
        self.next_traj_id += 1

    def achieved_goal(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[..., : self.goal_dim]

    def obs(self) -> torch.Tensor:
        return self._obs.clone()

    def reset(self, generator: torch.Generator | None = None, hard: bool = False) -> torch.Tensor:
        if hard and self.hard_options is None:
            raise ValueError("studies.crl.env.hard_pair is not set: no hard pair is defined for this gymnasium env")
        self.hard = hard
        where = generator.device if generator is not None else "cpu"
        seeds = torch.randint(0, 2**31 - 1, (self.num_envs,), generator=generator, device=where).tolist()
        for i, s in enumerate(seeds):
            self._reset_one(i, int(s))
        self._frozen.zero_()
        return self.obs()

    def step(self, action: torch.Tensor, generator: torch.Generator | None = None, autoreset: bool = True) -> StepOut:
        if action.shape != (self.num_envs, self.action_dim):
            raise ValueError(f"action must have shape ({self.num_envs}, {self.action_dim}), got {tuple(action.shape)}")
        # The agent acts in [-1, 1]; rescale to the env's box.
        a = action.detach().cpu().float().clamp(-1, 1)
        a = (self._low + (a + 1) * 0.5 * (self._high - self._low)).numpy()
        at_goal = torch.zeros(self.num_envs, device=self.device)
        done = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        for i, env in enumerate(self.envs):
            if self._frozen[i]:
                continue
            o, _, terminated, truncated, info = env.step(a[i])
            self._obs[i], self.goal[i] = self._split(o)
            self.t[i] += 1
            if "success" in info:
                at_goal[i] = float(bool(info["success"]))
            else:
                dist = np.linalg.norm(np.ravel(o["achieved_goal"]) - np.ravel(o["desired_goal"]))
                at_goal[i] = float(dist < self.goal_radius)
            done[i] = bool(terminated or truncated) or int(self.t[i]) >= self.episode_length
            if done[i]:
                if autoreset:
                    self._reset_one(i, None)
                else:
                    self._frozen[i] = True  # evaluation: an ended episode scores no further steps
        return StepOut(self.obs(), self.goal.clone(), at_goal, done)

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def state_dict(self) -> dict:
        return {"next_traj_id": self.next_traj_id}

    def load_state_dict(self, state: dict) -> None:
        self.next_traj_id = int(state["next_traj_id"])
        self.reset(None)


def make_gym_env(gym_id: str, num_envs: int, *, episode_length: int, goal_radius: float, kwargs: dict | None = None,
                 hard_pair: dict | None = None, dims: dict | None = None, device: str | torch.device = "cpu") -> GymGoalEnv:
    gymnasium = _import_gymnasium()
    make_one = lambda: gymnasium.make(gym_id, max_episode_steps=episode_length, **(kwargs or {}))  # noqa: E731
    env = GymGoalEnv(make_one, num_envs, episode_length=episode_length, goal_radius=goal_radius,
                     hard_options=_hard_options(hard_pair), device=device)
    if dims is not None:
        env.check_dims(int(dims["obs"]), int(dims["action"]), int(dims["goal"]))
    return env


def _hard_options(hard_pair: dict | None) -> dict | None:
    if not hard_pair:
        return None
    return {k: np.asarray(v, dtype=int) for k, v in hard_pair.items()}

