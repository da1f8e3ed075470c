"""What every RLVR training entry point shares: runtime, model, tracker, engine.

Entry points are called as `fn(spec)` by `python -m pipeline.launch`. A spec names the run
directory, the model (fresh from a spec, or a trained model directory to start from), the
engine settings, threads/device and tracking. The engine resumes from checkpoints only when
they carry this spec's fingerprint (a changed config value starts over).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn

from pipeline import runtime
from pipeline.io import atomic_path
from pipeline.models import directory
from pipeline.studies.rlvr import models
from pipeline.models.chars import CharTokenizer
from pipeline.tracking import Tracker, config_hash
from pipeline.train.distributed import setup_env
from pipeline.train.engine import EngineConfig, TrainResult, train_loop

ENGINE_KEYS = ("steps", "lr", "batch_size", "grad_accum", "warmup", "schedule", "min_lr_ratio",
               "weight_decay", "grad_clip", "zero_stage", "precision", "ckpt_every")


def initial_model(spec: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """The starting point: a trained model directory (`init`), or a fresh model from the
    `model` config block (a spine model's vocabulary is the task tokenizer's)."""
    if spec.get("init"):
        model, mspec = models.load_trained(spec["init"], dtype="float32")
        return model.train(), mspec
    vocab = CharTokenizer.load(spec["tokenizer"]).vocab_size if spec["model"]["kind"] == "spine" else 0
    mspec = models.model_spec(spec["model"], vocab)
    return models.build(mspec, dtype="float32").train(), mspec


def export_weights(model: nn.Module, path: Path) -> Path:
    """A plain float32 state_dict, written atomically (what the engine exports after training)."""
    with atomic_path(path, ".pt") as tmp:
        torch.save({k: v.detach().float().cpu() for k, v in model.state_dict().items()}, tmp)
    return path


def engine_config(spec: Mapping[str, Any]) -> EngineConfig:
    """EngineConfig from the spec's `train` block (a config block; parallelism keys ignored)."""
    t = spec["train"]
    return EngineConfig(**{k: t[k] for k in ENGINE_KEYS if k in t}, seed=int(spec["seed"]),
                        device=spec.get("device", "auto"), config_key=spec.get("config_key", "studies.rlvr"))


def fingerprint(spec: Mapping[str, Any]) -> str:
    """What decides the trajectory: everything but tracking, threads and labels."""
    return config_hash({k: v for k, v in spec.items() if k not in ("tracking", "threads", "wildcards")})


def train(spec: Mapping[str, Any], rule: str, make_loss: Callable[[nn.Module, dict], Callable]) -> TrainResult:
    """Run one training job: `make_loss(model, model_spec)` returns the engine's loss_fn."""
    from pipeline.job import settings  # TRANSITION until this study is on pipeline.job
    spec = {**spec, **settings()}
    runtime.setup(int(spec.get("threads", 1)), spec.get("device", "auto"), seed=int(spec["seed"]))
    setup_env()
    out_dir = Path(spec["out_dir"])
    model, mspec = initial_model(spec)
    if int(os.environ.get("RANK", "0")) == 0:
        directory.save_spec(out_dir, mspec)
    if int(spec["train"]["steps"]) == 0:  # use the starting model as it is (a pretrained HF base)
        if int(os.environ.get("RANK", "0")) == 0:
            export_weights(model, directory.weights_path(out_dir))
        return TrainResult(step=0, diverged=False, metrics_path=out_dir / "metrics.parquet", resumed_from=0)
    loss_fn = make_loss(model, mspec)
    track = spec.get("tracking", {})
    with Tracker("rlvr", rule, wildcards=spec.get("wildcards", {}), params=spec,
                 uri=track.get("uri"), enabled=bool(track.get("enabled", False)),
                 rank=int(os.environ.get("RANK", "0"))) as tracker:
        result = train_loop(model, loss_fn, engine_config(spec), out_dir, tracker=tracker,
                            desc=f"rlvr {rule}", fingerprint=fingerprint(spec))
        if result.diverged:
            raise RuntimeError(f"rlvr {rule}: training diverged at step {result.step} "
                               f"(see {result.metrics_path}); lower the learning rate")
        tracker.log_artifact(out_dir / "model.json")
    return result
