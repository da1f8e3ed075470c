"""Train one CRL agent (one depth × width × seed): collect, update, evaluate, checkpoint.

A round = every env steps `unroll_length` times with the stochastic actor (transitions go to
the trajectory buffer), then `updates_per_round` updates on batches with geometric future goals
(the paper's `training_step`). Before the first update the buffer is filled with `min_replay`
steps per env. Every `eval_every` rounds the deterministic actor is evaluated on fixed random
pairs and the hard pair; a row goes to `metrics.parquet` together with the time-at-goal and
success-any of the training episodes that ended since the last row.

Checkpoints (agent, optimisers, buffer, env, RNG) every `ckpt_every` rounds and on
SIGTERM/SIGUSR1 go through `pipeline.train.checkpoint`; a re-run resumes from the newest one
and gives the same numbers as an uninterrupted run (CPU, maze backend). A checkpoint written
under another config is dropped (`checkpoint.claim`). CRL has its own actor/critic/α optimisers, so it does not
go through the DeepSpeed engine. A non-finite loss ends the run and is recorded, not raised.

Entry point: `python -m pipeline.launch -- pipeline.studies.crl.train:main --spec '<json>' --job '<json>'`
with spec = a `specs.TrainSpec` as JSON (built by `specs.train` from the validated config).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline import job
from pipeline.io import atomic_path, write_json, write_parquet
from pipeline.progress import progress
from pipeline.runtime import place, resolve
from pipeline.studies.crl import STUDY
from pipeline.studies.crl.agent import AgentConfig, CRLAgent, CRLLearner
from pipeline.studies.crl.buffer import TrajectoryBuffer
from pipeline.studies.crl.config import RunConfig, env_dims
from pipeline.studies.crl.envs import make_env
from pipeline.studies.crl.evaluate import agent_policy, evaluate
from pipeline.studies.crl.sizing import agent_params
from pipeline.studies.crl.specs import TrainSpec
from pipeline.tracking import Tracker, config_hash
from pipeline.train import checkpoint as ckpt

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    rounds: int
    env_steps: int
    updates: int
    wall_s: float  # training (collect + update) time, evaluation excluded
    cpu_s: float
    diverged: bool
    finished: bool


def plan(cfg: RunConfig) -> tuple[int, int]:
    """(prefill rounds, training rounds) that spend about `total_env_steps`."""
    a = cfg.algo
    per_round = a.num_envs * a.unroll_length
    prefill = math.ceil(a.min_replay / a.unroll_length)
    return prefill, max(1, math.ceil((a.total_env_steps - prefill * per_round) / per_round))


class Trainer:
    def __init__(self, cfg: RunConfig, depth: int, width: int, seed: int, device: torch.device) -> None:
        self.cfg, self.seed, self.device = cfg, seed, resolve(device)
        dims, n, a = env_dims(cfg.env), cfg.network, cfg.algo
        torch.manual_seed(seed)  # network initialisation
        self.agent = place(CRLAgent(AgentConfig(
            obs_dim=dims.obs, action_dim=dims.action, goal_dim=dims.goal, width=width, depth=depth,
            actor_width=n.actor_width, actor_depth=n.actor_depth, repr_dim=n.repr_dim,
            logsumexp_coeff=a.logsumexp_coeff, entropy_param=a.entropy_param,
            actor_lr=a.actor_lr, critic_lr=a.critic_lr, alpha_lr=a.alpha_lr)), self.device)
        self.learner = CRLLearner(self.agent)
        self.params = agent_params(dims, width, depth, n.repr_dim, n.actor_width, n.actor_depth)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.env = make_env(cfg.env, a.num_envs, self.device)
        self.buffer = TrajectoryBuffer(a.buffer_size, a.num_envs, dims.obs, dims.action, dims.goal,
                                       cfg.env.episode_length, self.device)
        self.eval_envs: dict = {}
        self.obs = self.env.reset(self.gen)
        self.ep_hits = torch.zeros(a.num_envs, device=self.device)
        self.ep_touch = torch.zeros(a.num_envs, dtype=torch.bool, device=self.device)
        self.ep_len = torch.zeros(a.num_envs, device=self.device)
        self.finished_tag: list[torch.Tensor] = []
        self.finished_any: list[torch.Tensor] = []
        self.learn_metrics: dict[str, list[torch.Tensor]] = {}
        self.round = self.env_steps = self.updates = 0
        self.wall_s = self.cpu_s = 0.0
        self.rows: list[dict] = []
        self.diverged = False

    # -- one round -------------------------------------------------------------------------
    def collect(self, steps: int) -> None:
        env, agent = self.env, self.agent
        for _ in range(steps):
            obs, traj = self.obs, env.traj_id.clone()
            action = agent.act(obs, env.goal, deterministic=False, generator=self.gen)
            out = env.step(action, self.gen)
            self.buffer.insert(obs, action, env.achieved_goal(obs), traj)
            self.obs = out.obs
            self.ep_hits += out.at_goal
            self.ep_touch |= out.at_goal > 0
            self.ep_len += 1
            if bool(out.done.any()):
                d = out.done
                self.finished_tag.append(self.ep_hits[d] / self.ep_len[d])
                self.finished_any.append(self.ep_touch[d].float())
                self.ep_hits[d], self.ep_touch[d], self.ep_len[d] = 0.0, False, 0.0
        self.env_steps += steps * env.num_envs

    def learn(self, n: int) -> None:
        a = self.cfg.algo
        for _ in range(n):
            batch = self.buffer.sample(a.batch_size, a.gamma, self.gen)
            for k, v in self.learner.update(batch, self.gen).items():
                self.learn_metrics.setdefault(k, []).append(v)
        self.updates += n

    def log_row(self, tracker: Tracker | None) -> dict:
        ev = self.cfg.evaluation
        row = {"round": self.round, "env_steps": self.env_steps, "updates": self.updates, "wall_s": self.wall_s,
               "cpu_s": self.cpu_s}
        for k, vs in self.learn_metrics.items():
            row[k] = float(torch.stack(vs).mean())
        self.learn_metrics.clear()
        if self.finished_tag:
            row["train_time_at_goal"] = float(torch.cat(self.finished_tag).mean())
            row["train_success_any"] = float(torch.cat(self.finished_any).mean())
            row["train_episodes"] = int(torch.cat(self.finished_tag).numel())
        self.finished_tag.clear()
        self.finished_any.clear()
        self.agent.eval()
        for r in evaluate(self.cfg, agent_policy(self.agent), ev.episodes, ev.hard_episodes, ev.seed,
                          self.device, envs=self.eval_envs):
            row[f"eval_{r['pairs']}_time_at_goal"] = r["time_at_goal"]
            row[f"eval_{r['pairs']}_success_any"] = r["success_any"]
        self.agent.train()
        self.rows.append(row)
        if tracker is not None:
            tracker.log_metrics({k: v for k, v in row.items() if k != "round"}, step=self.env_steps)
        return row

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"learner": self.learner.state_dict(), "buffer": self.buffer.state_dict(),
                "env": self.env.state_dict(), "obs": self.obs, "gen": self.gen.get_state(),
                "episode": {"hits": self.ep_hits, "touch": self.ep_touch, "len": self.ep_len},
                "finished": {"tag": self.finished_tag, "any": self.finished_any},
                "learn_metrics": {k: torch.stack(v) for k, v in self.learn_metrics.items()},
                "counters": {"round": self.round, "env_steps": self.env_steps, "updates": self.updates,
                             "wall_s": self.wall_s, "cpu_s": self.cpu_s}, "rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state["learner"])
        self.buffer.load_state_dict(state["buffer"])
        self.env.load_state_dict(state["env"])
        self.obs = place(state["obs"], self.device) if self.cfg.env.backend == "maze" else self.env.obs()
        self.gen.set_state(state["gen"].cpu())
        ep = state["episode"]
        self.ep_hits, self.ep_touch, self.ep_len = place([ep[k] for k in ("hits", "touch", "len")], self.device)
        self.finished_tag = place(list(state["finished"]["tag"]), self.device)
        self.finished_any = place(list(state["finished"]["any"]), self.device)
        self.learn_metrics = {k: list(place(v, self.device).unbind()) for k, v in state["learn_metrics"].items()}
        c = state["counters"]
        self.round, self.env_steps, self.updates = c["round"], c["env_steps"], c["updates"]
        self.wall_s, self.cpu_s = c["wall_s"], c["cpu_s"]
        self.rows = list(state["rows"])


def run(cfg: RunConfig, *, depth: int, width: int, seed: int, out_dir: str | Path, device: str | torch.device = "cpu",
        tracker: Tracker | None = None, stop_after_rounds: int | None = None) -> RunResult:
    """Train (or resume) one run into `out_dir`; writes final.pt, metrics.parquet, run.json when done.

    `stop_after_rounds` stops early after saving a checkpoint, exactly as a signal would (tests).
    """
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "ckpt"
    cfg_hash = config_hash({"cfg": cfg.to_dict(), "depth": depth, "width": width, "seed": seed})
    trainer = Trainer(cfg, depth, width, seed, device)
    ckpt.clean_partial(ckpt_dir)
    ckpt.claim(ckpt_dir, cfg_hash)  # checkpoints of another config are dropped
    found = ckpt.newest(ckpt_dir)
    if found is not None:
        trainer.load_state_dict(ckpt.load_state(found[1]))
        log.info("resumed from %s (round %d)", found[1], trainer.round)
    prefill, rounds = plan(cfg)
    a, t = cfg.algo, cfg.train
    if trainer.round == 0 and trainer.buffer.inserted == 0:
        trainer.collect(prefill * a.unroll_length)
    stopped = False
    bar = progress(total=rounds, initial=trainer.round, desc=f"crl d{depth} w{width} s{seed}")
    with ckpt.StopSignal() as stop:
        while trainer.round < rounds:
            t0, c0 = time.perf_counter(), time.process_time()
            trainer.agent.train()
            trainer.collect(a.unroll_length)
            trainer.learn(a.updates_per_round)
            trainer.round += 1
            trainer.wall_s += time.perf_counter() - t0
            trainer.cpu_s += time.process_time() - c0
            bar.update(1)
            last = trainer.round == rounds
            losses = trainer.learn_metrics
            if not all(bool(torch.isfinite(torch.stack(losses[k])).all()) for k in ("critic_loss", "actor_loss")):
                trainer.diverged = True
                log.warning("non-finite loss at round %d: the run diverged and stops here", trainer.round)
            if trainer.round % t.eval_every == 0 or last or trainer.diverged:
                row = trainer.log_row(tracker)
                tag = row.get("eval_random_time_at_goal", float("nan"))
                bar.set_postfix(tag=f"{tag:.3f}")
                log.info("round %d/%d: %d env steps, %d updates, eval time at goal %.3f (hard pair %.3f)",
                         trainer.round, rounds, trainer.env_steps, trainer.updates, tag,
                         row.get("eval_hard_time_at_goal", float("nan")))
            if trainer.diverged:
                break
            halt = stop.received is not None or (stop_after_rounds is not None and trainer.round >= stop_after_rounds)
            if trainer.round % t.ckpt_every == 0 or (halt and not last):
                ckpt.save_state(trainer.state_dict(), ckpt_dir, trainer.round, t.keep_last)
            if halt and not last:
                stopped = True
                break
    bar.close()
    result = RunResult(trainer.round, trainer.env_steps, trainer.updates, trainer.wall_s, trainer.cpu_s, trainer.diverged,
                       finished=not stopped)
    if stopped:
        if stop.received is not None:
            raise SystemExit(f"stopped by signal {stop.received} after round {trainer.round}; "
                             f"checkpoint saved in {ckpt_dir}, re-run to resume")
        return result
    with atomic_path(out_dir / "final.pt", ".pt") as tmp:
        torch.save({k: v.detach().cpu() for k, v in trainer.agent.state_dict().items()}, tmp)
    write_parquet(trainer.rows, out_dir / "metrics.parquet")
    write_json({"depth": depth, "width": width, "seed": seed, "params": trainer.params,
                "rounds": trainer.round, "env_steps": trainer.env_steps, "updates": trainer.updates,
                "wall_s": trainer.wall_s, "cpu_s": trainer.cpu_s, "diverged": trainer.diverged, "config_hash": cfg_hash,
                "device": str(trainer.device)}, out_dir / "run.json")
    if tracker is not None:
        tracker.log_artifact(out_dir / "run.json")
    return result


def main(raw: dict) -> None:
    """Entry point of rule crl_train (through pipeline.launch): `raw` is a TrainSpec as JSON."""
    spec = job.spec_from(TrainSpec, raw)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with job.start(STUDY, device=spec.device, seed=spec.seed, params=spec) as j:
        run(spec.run_config(), depth=spec.depth, width=spec.width, seed=spec.seed, out_dir=spec.out_dir,
            device=j.device, tracker=j.tracker)
