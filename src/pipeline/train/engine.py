"""The shared training engine: DeepSpeed around any torch model, with exact resume.

A study supplies a model and `loss_fn(module, ctx) -> (loss, metrics)`; the batch must be a
pure function of `ctx` (step, micro-step, rank), which makes a resumed run follow the same
trajectory as an uninterrupted one. The engine owns everything else: ZeRO stage, bf16,
gradient accumulation and clipping (from config), torch AdamW (nothing to compile), a
warmup+cosine schedule, EMA weights, checkpoints every N steps and on SIGTERM/SIGUSR1,
divergence (a non-finite loss ends the run and is recorded, not raised), progress, and the
per-step metrics written to Parquet and mirrored to MLflow.
"""
from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import torch
import torch.nn as nn

from pipeline.io import atomic_path, read_parquet, write_parquet
from pipeline.models.transformer import LOCAL_EXPERT
from pipeline.progress import progress
from pipeline.runtime import place
from pipeline.train import checkpoint as ck
from pipeline.train.distributed import DistInfo, init


@dataclass
class EngineConfig:
    steps: int
    lr: float
    batch_size: int  # global: micro_batch · grad_accum · world
    grad_accum: int = 1
    warmup: int = 0
    schedule: str = "cosine"  # cosine | constant
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0  # None or 0 → no clipping
    zero_stage: int = 0
    precision: str = "fp32"  # fp32 | bf16
    ckpt_every: int = 0  # 0 → only on a stop signal and at the end
    keep_last: int = 2
    seed: int = 0
    ema: float | None = None
    ema_warmup: int = 0  # EMA tracks the raw weights exactly until this step
    export_at: list[int] = field(default_factory=list)
    log_every: int = 50
    device: str = "auto"  # cpu | cuda | auto
    config_key: str = "train"  # where these values live in the config, for error messages

    def micro_batch(self, world: int) -> int:
        denom = world * self.grad_accum
        if self.batch_size % denom:
            raise ValueError(
                f"{self.config_key}.batch_size={self.batch_size} does not divide across "
                f"{world} rank(s) × grad_accum={self.grad_accum}"
            )
        return self.batch_size // denom


@dataclass(frozen=True)
class StepContext:
    """Where a micro-step stands. The batch is drawn for all ranks at once and sliced, so the
    data of a step is the same whatever the number of ranks (1 rank and N ranks agree)."""

    step: int
    micro: int
    rank: int
    world: int
    seed: int
    micro_batch: int  # rows this rank processes
    device: torch.device

    @property
    def global_micro_batch(self) -> int:
        """Rows of one micro-step across all ranks: draw this many, then keep `local(...)`."""
        return self.micro_batch * self.world

    def generator(self) -> torch.Generator:
        """Deterministic RNG for this (step, micro-step), identical on every rank."""
        g = torch.Generator(device="cpu")
        g.manual_seed((self.seed * 1_000_003 + self.step) * 1009 + self.micro)
        return g

    def local(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a batch drawn with `global_micro_batch` rows."""
        return batch[self.rank * self.micro_batch:(self.rank + 1) * self.micro_batch]


@dataclass
class TrainResult:
    step: int
    diverged: bool
    metrics_path: Path
    resumed_from: int


def lr_lambda(cfg: EngineConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if cfg.warmup and step < cfg.warmup:
            return (step + 1) / cfg.warmup
        if cfg.schedule == "constant":
            return 1.0
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


def ds_config(cfg: EngineConfig, world: int) -> dict[str, Any]:
    return {
        "train_batch_size": cfg.batch_size,
        "train_micro_batch_size_per_gpu": cfg.micro_batch(world),
        "gradient_accumulation_steps": cfg.grad_accum,
        "gradient_clipping": float(cfg.grad_clip or 0.0),
        "zero_optimization": {"stage": cfg.zero_stage},
        "bf16": {"enabled": cfg.precision == "bf16"},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def _grad_norm(module: nn.Module) -> float:
    """Global L2 norm of the gradients before clipping (DeepSpeed reports it only when it clips).

    An expert-parallel rank holds only its own experts' gradients: their squares are summed
    over the expert-parallel group, so N ranks report the norm one rank would.
    """
    norms = [(p, torch.linalg.vector_norm(p.grad.detach().float())) for p in module.parameters() if p.grad is not None]
    if not norms:
        return math.nan
    moes = [m for m in module.modules() if type(m).__name__ == "MoE" and getattr(m, "ep_size", 1) > 1]
    if not moes:
        return float(torch.linalg.vector_norm(torch.stack([n for _, n in norms])))
    shared = [n for p, n in norms if getattr(p, "allreduce", True)]
    experts = torch.stack([n for p, n in norms if not getattr(p, "allreduce", True)]).square().sum()
    torch.distributed.all_reduce(experts, group=moes[0].deepspeed_moe.ep_group)
    return float((torch.stack(shared).square().sum() + experts).sqrt())


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"},
              {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"}]
    groups = [g for g in groups if g["params"]]
    if any(getattr(p, "allreduce", True) is False for p in model.parameters()):  # MoE experts
        from deepspeed.moe.utils import split_params_into_different_moe_groups_for_optimizer
        groups = split_params_into_different_moe_groups_for_optimizer(groups)
    return groups


def _safe_load(engine: Any) -> None:
    """Make DeepSpeed read checkpoints with torch.load(weights_only=True), naming a bad file."""

    def load(path, map_location=None):
        return ck.load_file(Path(path), map_location=map_location)

    engine.checkpoint_engine.load = load


def _global_state(module: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The full state dict of an expert-parallel model, as a model with ep_size=1 names it.

    Each rank holds num_experts/ep_size experts; ranks exchange theirs so the exported weights
    load into a single process. A collective: every rank must call it.
    """
    moes = [m for m in module.modules() if type(m).__name__ == "MoE" and getattr(m, "ep_size", 1) > 1]
    state = {k: v.detach().float().cpu() for k, v in state.items()}
    if not moes:
        return state
    from torch.distributed import get_rank

    local = moes[0].num_local_experts
    ep_rank = get_rank(group=moes[0].deepspeed_moe.ep_group)
    renamed = {}
    for k, v in state.items():
        m = LOCAL_EXPERT.match(k)
        renamed[f"{m.group(1)}{ep_rank * local + int(m.group(2))}{m.group(3)}" if m else k] = v
    parts: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, renamed)
    merged: dict[str, torch.Tensor] = {}
    for part in parts:
        merged.update(part)
    return merged


def _export(module: nn.Module, ema: dict[str, torch.Tensor] | None, path: Path, rank: int) -> None:
    """Write plain float32 weights (EMA if kept) for evaluation jobs; a collective."""
    state = _global_state(module, ema if ema is not None else module.state_dict())
    if rank == 0:
        with atomic_path(path, ".pt") as tmp:
            torch.save(state, tmp)


def train_loop(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, StepContext], tuple[torch.Tensor, dict[str, float]]],
    cfg: EngineConfig,
    out_dir: str | Path,
    tracker: Any = None,
    desc: str = "train",
    fingerprint: str = "",
) -> TrainResult:
    """Train to cfg.steps, resuming from the newest checkpoint made with the same fingerprint.

    `fingerprint` identifies the run's config: checkpoints left by a run with other settings
    (a changed learning rate, say) are discarded instead of resumed.
    """
    import deepspeed

    dist: DistInfo = init(cfg.device)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "ckpt"
    metrics_path = out_dir / "metrics.parquet"
    cfg.micro_batch(dist.world)  # fail fast, naming the key
    model = place(model, dist.device)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler,
                                           config=ds_config(cfg, dist.world), dist_init_required=False)
    _safe_load(engine)

    ema: dict[str, torch.Tensor] | None = None
    if cfg.ema:
        ema = {k: v.detach().float().clone() for k, v in engine.module.state_dict().items()}
    rows: list[dict[str, Any]] = []
    start = 0
    if dist.rank == 0:
        ck.clean_partial(ckpt_dir)
        ck.claim(ckpt_dir, fingerprint)
    torch.distributed.barrier()
    found = ck.newest(ckpt_dir)
    if found:
        start, path = found
        _, client = engine.load_checkpoint(str(ckpt_dir), tag=path.name)
        if client is None:
            raise ck.CheckpointError(f"checkpoint {path} could not be loaded by DeepSpeed")
        if ema is not None:
            ema = ck.load_file(path / "ema.pt")
        rows = read_parquet(path / "metrics.parquet").to_pylist() if (path / "metrics.parquet").exists() else []
        rows = [r for r in rows if r["step"] <= start]
        print(f"[{desc}] resumed from {path} (step {start})", file=sys.stderr, flush=True)

    def save(step: int) -> None:
        tag = ck.partial_dir(ckpt_dir, step).name
        engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state={"step": step}, save_latest=False)
        torch.distributed.barrier()
        if dist.rank == 0:
            if ema is not None:
                torch.save(ema, ck.partial_dir(ckpt_dir, step) / "ema.pt")
            if rows:
                write_parquet(rows, ck.partial_dir(ckpt_dir, step) / "metrics.parquet")
            ck.commit(ckpt_dir, step, cfg.keep_last)
        torch.distributed.barrier()

    diverged = False
    export_at = set(cfg.export_at)
    micro = cfg.micro_batch(dist.world)
    bar = progress(total=cfg.steps, initial=start, desc=desc, enabled=dist.rank == 0)
    t_last, step = time.perf_counter(), start
    with ck.StopSignal() as stop:
        for step in range(start + 1, cfg.steps + 1):
            engine.train()
            total = torch.zeros(2)  # [loss sum over micro-steps, stop flag]
            logs: dict[str, float] = {}
            own_norm = math.nan
            for m in range(cfg.grad_accum):
                ctx = StepContext(step - 1, m, dist.rank, dist.world, cfg.seed, micro, dist.device)
                loss, extra = loss_fn(engine, ctx)
                engine.backward(loss)
                if m == cfg.grad_accum - 1 and cfg.zero_stage < 2:  # full gradients live on every rank
                    own_norm = _grad_norm(engine.module)
                engine.step()
                total[0] += loss.detach().float().cpu() / cfg.grad_accum
                for k, v in extra.items():
                    logs[k] = logs.get(k, 0.0) + float(v) / cfg.grad_accum
            total[1] = float(stop.received is not None)
            torch.distributed.all_reduce(total)
            loss_val = total[0].item() / dist.world
            gn = engine.get_global_grad_norm() if cfg.zero_stage >= 2 else own_norm
            now = time.perf_counter()
            row = {"step": step, "loss": loss_val, "lr": scheduler.get_last_lr()[0],
                   "grad_norm": float(gn) if gn is not None else math.nan, "step_time": now - t_last, **logs}
            t_last = now
            rows.append(row)
            if ema is not None:
                decay = 0.0 if step <= cfg.ema_warmup else cfg.ema
                with torch.no_grad():
                    for k, v in engine.module.state_dict().items():
                        ema[k].mul_(decay).add_(v.detach().float(), alpha=1 - decay)
            if tracker is not None:
                tracker.log_metrics({k: v for k, v in row.items() if k != "step"}, step)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_val:.4f}")
            if dist.rank == 0 and not sys.stderr.isatty() and (step % cfg.log_every == 0 or step == cfg.steps):
                print(f"[{desc}] step {step}/{cfg.steps} loss {loss_val:.4f}", file=sys.stderr, flush=True)
            if not math.isfinite(loss_val):
                diverged = True
                print(f"[{desc}] loss became non-finite at step {step}: run recorded as diverged",
                      file=sys.stderr, flush=True)
                break
            if step in export_at:
                _export(engine.module, ema, out_dir / "weights" / f"step{step:08d}.pt", dist.rank)
            if total[1] > 0:
                save(step)
                bar.close()
                signum = stop.received or 15
                # Each rank says whether the signal reached it (SLURM signals every task of the step).
                got = signal.Signals(stop.received).name if stop.received else "none here, another rank's"
                print(f"[{desc}] stop signal received (rank {dist.rank}: {got}): checkpoint saved at step {step}; "
                      "re-run to resume", file=sys.stderr, flush=True)
                raise SystemExit(128 + int(signum))
            if cfg.ckpt_every and step % cfg.ckpt_every == 0 and step < cfg.steps:
                save(step)
    bar.close()
    if not diverged:
        save(step)
    _export(engine.module, ema, out_dir / "weights" / "final.pt", dist.rank)
    if dist.rank == 0:
        write_parquet(pa.Table.from_pylist(rows), metrics_path)
    torch.distributed.barrier()
    return TrainResult(step=step, diverged=diverged, metrics_path=metrics_path, resumed_from=start)
