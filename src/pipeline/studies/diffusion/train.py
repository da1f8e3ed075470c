"""Train one denoiser on one training subset (n, seed) with the shared DeepSpeed engine.

Entry point for `python -m pipeline.launch -- pipeline.studies.diffusion.train:main
--spec <json>`. The batch of each step (which images, which diffusion steps, which noise)
is drawn from the engine's per-step generator, so a resumed run is exact. The engine keeps
an EMA of the weights and exports it at the log-spaced steps of `plan.export_steps`; those
files are what the evaluation jobs sample from.

spec: {subset, out_dir, n, seed, model, ddpm, train, checkpoints, threads, device, tracking}.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from pipeline.io import file_sha256, write_json
from pipeline.studies.diffusion import plan
from pipeline.studies.diffusion.data import read_images, to_model_space
from pipeline.studies.diffusion.ddpm import DDPMConfig, Diffusion
from pipeline.studies.diffusion.denoiser import build_denoiser

SPEC_KEYS = ("subset", "out_dir", "n", "seed", "model", "ddpm", "train", "checkpoints")


def weights_path(out_dir: str | Path, step: int) -> Path:
    """Where the engine exports the (EMA) weights of `step`."""
    return Path(out_dir) / "weights" / f"step{step:08d}.pt"


def engine_config(spec: Mapping[str, Any]):
    from pipeline.train.engine import EngineConfig

    tr, n = spec["train"], int(spec["n"])
    return EngineConfig(
        steps=plan.max_steps(n, tr),
        lr=float(tr["lr"]),
        batch_size=plan.batch_size(n, tr),
        warmup=int(tr["warmup"]),
        schedule="constant",
        weight_decay=0.0,
        betas=tuple(tr["betas"]),
        grad_clip=tr.get("grad_clip"),
        precision=tr.get("precision", "fp32"),
        ckpt_every=int(tr.get("ckpt_every", 0)),
        keep_last=1,
        seed=int(spec["seed"]),
        ema=float(tr["ema"]),
        ema_warmup=int(tr["ema_warmup"]),
        export_at=plan.export_steps(n, {"train": tr, "checkpoints": spec["checkpoints"]}),
        log_every=max(1, plan.max_steps(n, tr) // 20),
        device=str(spec.get("device", "auto")),
        config_key="studies.diffusion.train",
    )


def fingerprint(spec: Mapping[str, Any]) -> str:
    """What a checkpoint must match to be resumed: the run's settings and its images."""
    from pipeline.tracking import config_hash

    key = {k: spec[k] for k in SPEC_KEYS if k not in ("out_dir", "subset")}
    return config_hash({**key, "subset_sha256": file_sha256(spec["subset"])})


def main(spec: dict[str, Any]) -> None:
    from pipeline.job import settings  # TRANSITION until this study is on pipeline.job
    spec = {**spec, **settings()}
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise KeyError(f"diffusion train spec lacks {missing}")
    from pipeline.runtime import place, setup

    setup(int(spec.get("threads", 1)), str(spec.get("device", "cpu")))
    out_dir = Path(spec["out_dir"])
    rank = int(os.environ.get("RANK", 0))

    images, _ = read_images(spec["subset"])
    if len(images) != int(spec["n"]):
        raise ValueError(f"{spec['subset']}: holds {len(images)} images, expected n={spec['n']}")
    x_all = to_model_space(images)
    diffusion = Diffusion(DDPMConfig(**spec["ddpm"]))
    torch.manual_seed(int(spec["seed"]))
    model = build_denoiser(spec["model"], tuple(x_all.shape[1:]))

    def loss_fn(module, ctx):
        # drawn for all ranks at once and sliced: the data of a step does not depend on the rank count
        g = ctx.generator()
        n_img, rows = x_all.shape[0], ctx.global_micro_batch
        if n_img >= rows:  # distinct images, as the paper's min(batch, n)
            idx = torch.randperm(n_img, generator=g)[:rows]
        else:  # tiny n: images repeat within the step (see plan.batch_size)
            idx = torch.randint(0, n_img, (rows,), generator=g)
        x0 = x_all[idx]
        t, noise = diffusion.draw(x0, g)
        x0, t, noise = place([ctx.local(v) for v in (x0, t, noise)], ctx.device)
        return diffusion.loss_at(module, x0, t, noise), {}

    from pipeline.tracking import Tracker
    from pipeline.train.engine import train_loop

    cfg = engine_config(spec)
    track = spec.get("tracking") or {}
    with Tracker(
        "diffusion", "diffusion_train", wildcards={"n": spec["n"], "seed": spec["seed"]},
        params={k: spec[k] for k in SPEC_KEYS}, uri=track.get("uri"),
        enabled=bool(track.get("enabled", False)), rank=rank,
    ) as tracker:
        result = train_loop(model, loss_fn, cfg, out_dir, tracker=tracker, desc=f"diffusion n={spec['n']} s={spec['seed']}",
                            fingerprint=fingerprint(spec))
    if rank == 0:
        write_json({"step": result.step, "diverged": result.diverged, "export_at": cfg.export_at}, out_dir / "result.json")
