"""What every RLVR training entry point shares: run directory, model, tracker, engine.

Entry points are called as `fn(spec)` by `python -m pipeline.launch`. A spec names the run
directory, the model (fresh from a spec, or a trained model directory to start from), the
engine settings and tracking. If the directory holds checkpoints of a *different* spec
(a config value changed), they are removed first: resume is only ever from the same run.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn

from pipeline.io import write_json
from pipeline.studies.rlvr import models
from pipeline.tracking import Tracker
from pipeline.train.engine import EngineConfig, TrainResult, train_loop

SPEC_FILE = "run_spec.json"


def prepare_run_dir(out_dir: str | Path, spec: Mapping[str, Any]) -> Path:
    """Create `out_dir`; drop checkpoints left by a run with another spec."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = out_dir / SPEC_FILE
    if old.is_file():
        try:
            same = json.loads(old.read_text()) == json.loads(json.dumps(dict(spec), default=str))
        except json.JSONDecodeError:
            same = False
        if not same and (out_dir / "ckpt").exists():
            print(f"[rlvr] {out_dir}: spec changed, discarding old checkpoints", file=sys.stderr, flush=True)
            shutil.rmtree(out_dir / "ckpt")
    write_json(dict(spec), old)
    return out_dir


def initial_model(spec: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """The starting point: a trained model directory (`init`) or a fresh `model` spec."""
    if spec.get("init"):
        model, mspec = models.load_trained(spec["init"])
        return model.train(), mspec
    torch.manual_seed(int(spec["engine"]["seed"]))
    return models.build(spec["model"]).train(), dict(spec["model"])


def engine_config(spec: Mapping[str, Any], key: str) -> EngineConfig:
    e = dict(spec["engine"])
    if "betas" in e:
        e["betas"] = tuple(e["betas"])
    return EngineConfig(**e, config_key=key)


def train(spec: Mapping[str, Any], rule: str, make_loss: Callable[[nn.Module, dict], Callable]) -> TrainResult:
    """Run one training job: `make_loss(model, model_spec)` returns the engine's loss_fn."""
    torch.set_num_threads(int(spec.get("threads", 1)))
    out_dir = prepare_run_dir(spec["out_dir"], spec)
    model, mspec = initial_model(spec)
    models.save_spec(out_dir, mspec)
    loss_fn = make_loss(model, mspec)
    cfg = engine_config(spec, spec.get("config_key", f"studies.rlvr.{rule}"))
    track = spec.get("tracking", {})
    with Tracker("rlvr", rule, wildcards=spec.get("wildcards", {}), params=spec,
                 uri=track.get("uri"), enabled=bool(track.get("enabled", False)),
                 rank=int(__import__("os").environ.get("RANK", "0"))) as tracker:
        result = train_loop(model, loss_fn, cfg, out_dir, tracker=tracker, desc=f"rlvr {rule}")
        if result.diverged:
            raise RuntimeError(f"{rule}: training diverged at step {result.step} (see {result.metrics_path})")
        tracker.log_artifact(out_dir / "model.json")
    return result
