"""The Gymnasium goal-env adapter.

The real test needs the optional `robotics` extra (gymnasium-robotics + mujoco), which this
environment does not install; it skips with that reason. The adapter's own logic (state layout,
action rescaling, success, auto-reset, trajectory ids) is tested on a tiny goal env written
here against the Gymnasium API, which needs no extra.
"""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pipeline.studies.crl.gym_adapter import GymGoalEnv


class LineGoalEnv:
    """A 1-D goal env with the Gymnasium API: the agent moves by action·0.1 toward a goal."""

    def __init__(self, max_steps=6):
        box = lambda n, lo, hi: SimpleNamespace(shape=(n,), low=np.full(n, lo, np.float32), high=np.full(n, hi, np.float32))  # noqa: E731
        self.observation_space = {"observation": box(1, -1, 1), "achieved_goal": box(1, -5, 5), "desired_goal": box(1, -5, 5)}
        self.action_space = box(1, -2.0, 2.0)
        self.max_steps, self.rng = max_steps, np.random.default_rng(0)
        self.actions = []

    def _obs(self):
        return {"observation": np.array([self.t / 10]), "achieved_goal": np.array([self.x]),
                "desired_goal": np.array([self.goal])}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t, self.x = 0, 0.0
        self.goal = 0.3 if options else float(self.rng.uniform(-1, 1))
        return self._obs(), {}

    def step(self, action):
        self.actions.append(float(action[0]))
        self.t += 1
        self.x += 0.1 * float(action[0])
        success = abs(self.x - self.goal) < 0.05
        return self._obs(), float(success), False, self.t >= self.max_steps, {"success": success}

    def close(self):
        pass


def test_state_is_achieved_goal_then_observation_and_actions_are_rescaled():
    env = GymGoalEnv(LineGoalEnv, 3, episode_length=6, goal_radius=0.05)
    assert (env.obs_dim, env.action_dim, env.goal_dim) == (2, 1, 1)
    env.reset(torch.Generator().manual_seed(0))
    out = env.step(torch.tensor([[1.0], [0.0], [-1.0]]))
    assert [e.actions[-1] for e in env.envs] == [2.0, 0.0, -2.0]  # [-1, 1] → the env's box [-2, 2]
    assert torch.allclose(out.obs[:, 0], torch.tensor([0.2, 0.0, -0.2]))
    assert torch.allclose(env.achieved_goal(out.obs)[:, 0], out.obs[:, 0])
    assert torch.allclose(out.obs[:, 1], torch.full((3,), 0.1))


def test_success_autoreset_and_trajectory_ids():
    env = GymGoalEnv(LineGoalEnv, 2, episode_length=6, goal_radius=0.05, hard_options={"goal_cell": [0, 0]})
    env.reset(None, hard=True)  # hard pair: goal 0.3
    ids = env.traj_id.clone()
    hits = [env.step(torch.tensor([[0.5], [0.0]])) for _ in range(6)]
    # action 0.5 → 1.0 in the env's box → +0.1 per step: at the goal (0.3) after the third step only
    assert [h.at_goal[0].item() for h in hits] == [0, 0, 1, 0, 0, 0]
    assert [h.at_goal[1].item() for h in hits] == [0] * 6
    assert hits[-1].done.all() and not hits[-2].done.any()
    assert set(env.traj_id.tolist()).isdisjoint(ids.tolist()) and (env.t == 0).all()


def test_hard_pair_needs_reset_options():
    env = GymGoalEnv(LineGoalEnv, 1, episode_length=6, goal_radius=0.05)
    with pytest.raises(ValueError, match="hard_pair"):
        env.reset(None, hard=True)


def test_declared_dims_are_checked():
    env = GymGoalEnv(LineGoalEnv, 1, episode_length=6, goal_radius=0.05)
    with pytest.raises(ValueError, match="studies.crl.env.dims"):
        env.check_dims(29, 8, 2)


def test_real_gymnasium_robotics_pointmaze():
    pytest.importorskip("gymnasium_robotics", reason="optional extra `robotics` (gymnasium-robotics, mujoco) "
                        "is not installed here; install it with pip install '.[robotics]'")
    from pipeline.studies.crl.gym_adapter import make_gym_env

    env = make_gym_env("PointMaze_UMaze-v3", 2, episode_length=20, goal_radius=0.45,
                       hard_pair={"reset_cell": [1, 1], "goal_cell": [3, 1]}, dims={"obs": 6, "action": 2, "goal": 2})
    obs = env.reset(torch.Generator().manual_seed(0))
    assert obs.shape == (2, 6)
    for _ in range(20):
        out = env.step(torch.rand(2, 2) * 2 - 1)
    assert out.done.all()
    env.reset(None, hard=True)
    env.close()
