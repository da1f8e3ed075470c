"""Evaluation: time at goal and success of a policy on random start/goal pairs and the hard pair.

Time at goal = fraction of an episode's steps that end within the goal radius (the paper's
metric); success-any = the episode touched the goal at least once. The trained actor acts
deterministically (tanh of the mean), as in the paper's evaluator. For the torch mazes the maze
oracle (`oracle.py`) is evaluated on exactly the same pairs: it is the ceiling the claims use.
Pairs come from a fixed evaluation seed, so every network of a sweep is judged on the same ones.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch

from pipeline.io import write_parquet
from pipeline.runtime import place
from pipeline.studies.crl.agent import AgentConfig, CRLAgent
from pipeline.studies.crl.config import RunConfig, env_dims
from pipeline.studies.crl.envs import PointMaze, make_env
from pipeline.studies.crl.oracle import MazeOracle
from pipeline.train.checkpoint import load_file

log = logging.getLogger(__name__)

Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def rollout(env, policy: Policy, generator: torch.Generator | None, hard: bool = False,
            pairs: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """One episode in every env; per-episode time at goal and success-any, plus the pairs used."""
    if pairs is not None:
        obs = env.reset(start=pairs[0], goal=pairs[1])
    else:
        obs = env.reset(generator, hard=hard)
    start, goal = obs.clone(), env.goal.clone()
    hits = torch.zeros(env.num_envs, device=obs.device)
    touched = torch.zeros(env.num_envs, dtype=torch.bool, device=obs.device)
    for _ in range(env.episode_length):
        out = env.step(policy(obs, env.goal), generator, autoreset=False)
        obs = out.obs
        hits += out.at_goal
        touched |= out.at_goal > 0
    return {"time_at_goal": hits / env.episode_length, "success_any": touched.float(), "start": start, "goal": goal}


def agent_policy(agent: CRLAgent) -> Policy:
    return lambda obs, goal: agent.act(obs, goal, deterministic=True)


def _summary(res: dict[str, torch.Tensor], pairs: str, policy: str) -> dict:
    tag = res["time_at_goal"]
    return {"pairs": pairs, "policy": policy, "episodes": int(tag.numel()),
            "time_at_goal": float(tag.mean()), "time_at_goal_std": float(tag.std()) if tag.numel() > 1 else 0.0,
            "success_any": float(res["success_any"].mean())}


def evaluate(cfg: RunConfig, policy: Policy, episodes: int, hard_episodes: int, seed: int,
             device: str | torch.device = "cpu", with_oracle: bool = False, envs: dict | None = None) -> list[dict]:
    """Summary rows for random pairs and the hard pair (and the oracle on the same pairs).

    `envs` caches the evaluation envs between calls ({"random": env, "hard": env}).
    """
    envs = envs if envs is not None else {}
    rows = []
    for pairs, n in (("random", episodes), ("hard", hard_episodes)):
        if n <= 0 or (pairs == "hard" and cfg.env.backend == "gymnasium" and not cfg.env.hard_pair):
            continue
        env = envs.get(pairs) or envs.setdefault(pairs, make_env(cfg.env, n, device))
        gen = torch.Generator(device=device).manual_seed(seed + (pairs == "hard"))
        res = rollout(env, policy, gen, hard=pairs == "hard")
        rows.append(_summary(res, pairs, "agent"))
        if with_oracle and isinstance(env, PointMaze):
            oracle = MazeOracle(env)
            ores = rollout(env, lambda o, g: oracle.act(o, g), None, pairs=(res["start"], res["goal"]))
            rows.append(_summary(ores, pairs, "oracle"))
    return rows


def load_agent(cfg: RunConfig, weights: str | Path, depth: int, width: int, device: str | torch.device = "cpu") -> CRLAgent:
    dims = env_dims(cfg.env)
    n = cfg.network
    agent = CRLAgent(AgentConfig(obs_dim=dims.obs, action_dim=dims.action, goal_dim=dims.goal, width=width, depth=depth,
                                 actor_width=n.actor_width, actor_depth=n.actor_depth, repr_dim=n.repr_dim))
    agent.load_state_dict(load_file(Path(weights), map_location=device))
    return place(agent, device).eval()


def evaluate_run(cfg: RunConfig, weights: str | Path, depth: int, width: int, seed: int, out: str | Path,
                 device: str | torch.device = "cpu", tracker=None) -> list[dict]:
    """Final evaluation of one trained network → `out` (Parquet, one row per pairs × policy)."""
    agent = load_agent(cfg, weights, depth, width, device)
    finite = all(torch.isfinite(p).all() for p in agent.parameters())
    ev = cfg.evaluation
    rows = evaluate(cfg, agent_policy(agent), ev.episodes, ev.hard_episodes, ev.seed, device, with_oracle=True)
    for r in rows:
        if r["policy"] == "agent" and not finite:  # a diverged run scores nothing, visibly
            r.update(time_at_goal=float("nan"), time_at_goal_std=float("nan"), success_any=float("nan"))
        r.update(depth=depth, width=width, seed=seed)
    write_parquet(rows, out)
    if tracker is not None:
        tracker.log_metrics({f"{r['policy']}_{r['pairs']}_{k}": r[k] for r in rows
                             for k in ("time_at_goal", "success_any")}, step=0)
    log.info("evaluated d%d w%d seed %d: %s", depth, width, seed, rows)
    return rows
