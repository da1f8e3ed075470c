"""The `studies.crl` config block as typed dataclasses, with errors that name the bad key.

Snakemake validates the block against `workflow/schemas/crl.schema.json` at DAG build; this
module is the library's own check for callers that bypass the workflow (tests, notebooks).
Defaults live in the config files and the schema, not here: every key is required.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping

from pipeline.studies.crl.sizing import Dims, agent_params, matched_width

PREFIX = "studies.crl"


class ConfigError(ValueError):
    """A key of the `studies.crl` block is missing, unknown or has a bad value."""


@dataclass(frozen=True)
class EnvCfg:
    backend: str  # maze | gymnasium
    maze: str | list[str]
    episode_length: int
    step_size: float
    goal_radius: float
    gym_id: str | None
    gym_kwargs: dict
    dims: dict | None  # {obs, action, goal}: required for gymnasium (the DAG needs sizes)
    hard_pair: dict | None  # gymnasium maze options {reset_cell: [r, c], goal_cell: [r, c]}


@dataclass(frozen=True)
class NetworkCfg:
    width: int
    depths: list[int]
    actor_width: int | None
    actor_depth: int | None
    repr_dim: int


@dataclass(frozen=True)
class WidthControlCfg:
    enabled: bool
    depth: int
    match_depths: list[int]


@dataclass(frozen=True)
class AlgoCfg:
    num_envs: int
    unroll_length: int
    updates_per_round: int
    batch_size: int
    actor_lr: float
    critic_lr: float
    alpha_lr: float
    gamma: float
    logsumexp_coeff: float
    entropy_param: float
    buffer_size: int
    min_replay: int
    total_env_steps: int


@dataclass(frozen=True)
class TrainCfg:
    eval_every: int
    ckpt_every: int
    keep_last: int
    gpus_per_rank: int  # scheduler request only; the device is the top-level train.device


@dataclass(frozen=True)
class RunNetworkCfg:
    """What a run needs of `network` besides its own depth and width (the sweep's wildcards)."""

    actor_width: int | None
    actor_depth: int | None
    repr_dim: int


@dataclass(frozen=True)
class RunTrainCfg:
    eval_every: int
    ckpt_every: int
    keep_last: int


@dataclass(frozen=True)
class EvalCfg:
    episodes: int
    hard_episodes: int
    seed: int


@dataclass(frozen=True)
class ClaimsCfg:
    ceiling_fraction: float
    jump_min: float
    min_jump_depths: int
    min_critic_accuracy: float


@dataclass(frozen=True)
class CRLConfig:
    enabled: bool
    env: EnvCfg
    network: NetworkCfg
    width_control: WidthControlCfg
    seeds: list[int]
    algo: AlgoCfg
    train: TrainCfg
    evaluation: EvalCfg
    claims: ClaimsCfg

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunConfig:
    """The part of the study block one training run depends on: a training job's spec carries
    only this, so that editing the sweep (depths, seeds, controls) or the claims' thresholds
    does not re-run finished training jobs."""

    env: EnvCfg
    network: RunNetworkCfg
    algo: AlgoCfg
    train: RunTrainCfg
    evaluation: EvalCfg

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_block(study: Mapping[str, Any]) -> dict:
    """The `RunConfig` subset of a raw `studies.crl` block (plain data, for a job's spec)."""
    net, train = study["network"], study["train"]
    return {"env": study["env"], "algo": study["algo"], "evaluation": study["evaluation"],
            "network": {k: net[k] for k in ("actor_width", "actor_depth", "repr_dim")},
            "train": {k: train[k] for k in ("eval_every", "ckpt_every", "keep_last")}}


def parse_run(raw: Mapping[str, Any], path: str = PREFIX) -> RunConfig:
    cfg = _build(RunConfig, raw, path)
    _check_common(cfg)
    return cfg


def _build(cls, raw: Any, path: str):
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path} must be a mapping, got {type(raw).__name__}")
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(f'{path}.{k}' for k in unknown)}")
    missing = sorted(set(names) - set(raw))
    if missing:
        raise ConfigError(f"missing key(s) {', '.join(f'{path}.{k}' for k in missing)}")
    kw = {}
    for name, f in names.items():
        sub = NESTED.get((cls, name))
        kw[name] = _build(sub, raw[name], f"{path}.{name}") if sub else raw[name]
    return cls(**kw)


def _check(ok: bool, key: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{PREFIX}.{key}: {msg}")


def _check_common(cfg: CRLConfig | RunConfig) -> None:
    _check(cfg.env.backend in ("maze", "gymnasium"), "env.backend", f"must be maze or gymnasium, got {cfg.env.backend!r}")
    if cfg.env.backend == "gymnasium":
        _check(bool(cfg.env.gym_id), "env.gym_id", "is required when env.backend is gymnasium")
        _check(isinstance(cfg.env.dims, Mapping) and set(cfg.env.dims) == {"obs", "action", "goal"}, "env.dims",
               "must be {obs, action, goal} when env.backend is gymnasium")
    _check(0 < cfg.algo.gamma < 1, "algo.gamma", f"must be in (0, 1), got {cfg.algo.gamma}")
    _check(cfg.algo.buffer_size > cfg.algo.unroll_length, "algo.buffer_size", "must exceed algo.unroll_length")
    _check(cfg.algo.min_replay >= 2, "algo.min_replay", "must be >= 2 time steps")
    _check(cfg.algo.min_replay <= cfg.algo.buffer_size, "algo.min_replay", "must not exceed algo.buffer_size")


def parse(raw: Mapping[str, Any]) -> CRLConfig:
    """The whole `studies.crl` block."""
    cfg = _build(CRLConfig, raw, PREFIX)
    _check_common(cfg)
    for d in [*cfg.network.depths, cfg.width_control.depth, *cfg.width_control.match_depths]:
        _check(d >= 4 and d % 4 == 0, "network.depths", f"depths must be positive multiples of 4, got {d}")
    _check(len(cfg.network.depths) >= 1, "network.depths", "must list at least one depth")
    _check(set(cfg.width_control.match_depths) <= set(cfg.network.depths), "width_control.match_depths",
           "must be depths of network.depths (the widened net is compared with them)")
    _check(len(cfg.seeds) >= 1 and len(set(cfg.seeds)) == len(cfg.seeds), "seeds", "must be distinct and non-empty")
    return cfg


NESTED = {
    (CRLConfig, "env"): EnvCfg, (CRLConfig, "network"): NetworkCfg, (CRLConfig, "width_control"): WidthControlCfg,
    (CRLConfig, "algo"): AlgoCfg, (CRLConfig, "train"): TrainCfg, (CRLConfig, "evaluation"): EvalCfg,
    (CRLConfig, "claims"): ClaimsCfg,
    (RunConfig, "env"): EnvCfg, (RunConfig, "network"): RunNetworkCfg, (RunConfig, "algo"): AlgoCfg,
    (RunConfig, "train"): RunTrainCfg, (RunConfig, "evaluation"): EvalCfg,
}


def run_config(cfg: CRLConfig) -> RunConfig:
    return parse_run(run_block(cfg.to_dict()))


def env_dims(env: EnvCfg) -> Dims:
    if env.backend == "maze":
        return Dims(obs=2, action=2, goal=2)  # the point mass: state (x, y), action (dx, dy)
    return Dims(obs=int(env.dims["obs"]), action=int(env.dims["action"]), goal=int(env.dims["goal"]))


def net_name(depth: int, width: int) -> str:
    return f"d{depth}_w{width}"


def networks(cfg: CRLConfig) -> list[dict]:
    """Every (depth, width) to train: the depth sweep and the widened shallow controls.

    A control is the shallow `width_control.depth` network widened until its total parameter
    count (actor + both encoders) is closest to that of each depth in `match_depths`.
    """
    dims, n = env_dims(cfg.env), cfg.network
    out = [{"depth": d, "width": n.width, "kind": "depth", "matches": None} for d in sorted(set(n.depths))]
    if cfg.width_control.enabled:
        for d in sorted(set(cfg.width_control.match_depths)):
            target = agent_params(dims, n.width, d, n.repr_dim, n.actor_width, n.actor_depth)["total"]
            w = matched_width(target, dims, cfg.width_control.depth, n.repr_dim, n.actor_width, n.actor_depth)
            out.append({"depth": cfg.width_control.depth, "width": w, "kind": "width", "matches": d})
    unique: dict[str, dict] = {}
    for net in out:
        net["name"] = net_name(net["depth"], net["width"])
        net["params"] = agent_params(dims, net["width"], net["depth"], n.repr_dim, n.actor_width, n.actor_depth)["total"]
        unique.setdefault(net["name"], net)  # a control equal to a sweep net is that net
    return list(unique.values())
