"""What every RLVR training entry point shares: the job, the starting model, the engine.

Entry points (base.run_sft, rl.run_rl) are called as `fn(spec)` by `python -m pipeline.launch` and
rebuild their typed spec (specs.SFTSpec / specs.RLSpec); `train` then runs the job through
`pipeline.job`, which sets threads, device and seed and opens the run's tracker. The engine resumes
from checkpoints only when they carry this spec's fingerprint (a changed config value starts over).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from pipeline import job
from pipeline.io import atomic_path
from pipeline.models import directory
from pipeline.models.chars import CharTokenizer
from pipeline.studies.rlvr import STUDY, models
from pipeline.studies.rlvr.specs import RunSpec
from pipeline.tracking import config_hash
from pipeline.train.distributed import setup_env
from pipeline.train.checkpoint import input_stamps
from pipeline.train.engine import EngineConfig, TrainResult, train_loop

ENGINE_KEYS = ("steps", "lr", "batch_size", "grad_accum", "warmup", "schedule", "min_lr_ratio",
               "weight_decay", "grad_clip", "zero_stage", "precision", "ckpt_every")


def initial_model(spec: RunSpec) -> tuple[nn.Module, dict]:
    """The starting point: a trained model directory (`init`), or a fresh model from the
    `model` config block (a spine model's vocabulary is the task tokenizer's)."""
    if spec.init is not None:
        model, mspec = models.load_trained(spec.init, dtype="float32")
        return model.train(), mspec
    vocab = CharTokenizer.load(spec.tokenizer).vocab_size if spec.model["kind"] == "spine" else 0
    mspec = models.model_spec(spec.model, vocab)
    return models.build(mspec, dtype="float32").train(), mspec


def export_weights(model: nn.Module, path: Path) -> Path:
    """A plain float32 state_dict, written atomically (what the engine exports after training)."""
    with atomic_path(path, ".pt") as tmp:
        torch.save({k: v.detach().float().cpu() for k, v in model.state_dict().items()}, tmp)
    return path


def engine_config(spec: RunSpec) -> EngineConfig:
    """EngineConfig from the spec's `train` block (a config block; its parallelism keys are the launcher's)."""
    t = spec.train
    return EngineConfig(**{k: t[k] for k in ENGINE_KEYS}, seed=spec.seed, device=spec.device,
                        config_key=spec.config_key)


def fingerprint(spec: RunSpec) -> str:
    """What decides the trajectory: the whole spec (threads, tracking and the job's name never enter it)
    and its input files as they are now (`input_stamps`: the paths stay, the data and the base change)."""
    weights = directory.weights_path(spec.init) if spec.init else None
    return config_hash({**dataclasses.asdict(spec), "inputs": input_stamps(spec.data, spec.tokenizer, weights)})


def train(spec: RunSpec, make_loss: Callable[[nn.Module, dict], Callable]) -> TrainResult:
    """Run one training job: `make_loss(model, model_spec)` returns the engine's loss_fn."""
    setup_env()  # rank known before anything logs
    with job.start(STUDY, device=spec.device, seed=spec.seed, params=spec) as j:
        out_dir = Path(spec.out_dir)
        model, mspec = initial_model(spec)
        if j.rank == 0:
            directory.save_spec(out_dir, mspec)
        if int(spec.train["steps"]) == 0:  # use the starting model as it is (a pretrained HF base)
            if j.rank == 0:
                export_weights(model, directory.weights_path(out_dir))
            return TrainResult(step=0, diverged=False, metrics_path=out_dir / "metrics.parquet", resumed_from=0)
        loss_fn = make_loss(model, mspec)
        result = train_loop(model, loss_fn, engine_config(spec), out_dir, tracker=j.tracker,
                            desc=f"rlvr {j.rule}", fingerprint=fingerprint(spec))
        if result.diverged:
            raise RuntimeError(f"{j.rule}: training diverged at step {result.step} "
                               f"(see {result.metrics_path}); lower the learning rate")
        j.tracker.log_artifact(out_dir / "model.json")
    return result
