"""Train one denoiser on one training subset (n, seed) with the shared DeepSpeed engine.

Entry point of rule diffusion_train, `python -m pipeline.launch ... pipeline.studies.diffusion.train:main
--spec <json>` (a TrainSpec). The batch of each step (which images, which diffusion steps, which noise)
is drawn from the engine's per-step generator, so a resumed run is exact. The engine keeps an EMA of
the weights and exports it at the log-spaced steps of `plan.export_steps` into the run's directory,
beside its checkpoints and outside the rule's outputs, so a stopped run that resumes still has the
exports made before the stop. At the end the exports are published into the declared weights
directory (`spec.weights_dir`) that every evaluation job takes as its input.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from pipeline import job
from pipeline.io import DataError, file_sha256, write_json
from pipeline.studies.diffusion import STUDY, plan
from pipeline.studies.diffusion.data import read_images, to_model_space
from pipeline.studies.diffusion.ddpm import DDPMConfig, Diffusion
from pipeline.studies.diffusion.denoiser import build_denoiser
from pipeline.studies.diffusion.specs import TrainSpec, weights_file

# What a checkpoint must match to be resumed (with the subset's checksum), and what the tracker records.
FINGERPRINT_KEYS = ("n", "seed", "model", "ddpm", "train", "checkpoints")
PARAM_KEYS = ("subset", "out_dir", *FINGERPRINT_KEYS)


def weights_path(out_dir: str | Path, step: int) -> Path:
    """Where the engine exports the (EMA) weights of `step` (the run's own copy, kept across re-runs)."""
    return Path(out_dir) / "weights" / f"step{step:08d}.pt"


def engine_config(spec: TrainSpec):
    from pipeline.train.engine import EngineConfig

    tr, n = spec.train, spec.n
    return EngineConfig(
        steps=plan.max_steps(n, tr),
        lr=float(tr["lr"]),
        batch_size=plan.batch_size(n, tr),
        warmup=int(tr["warmup"]),
        schedule="constant",
        weight_decay=0.0,
        betas=tuple(tr["betas"]),
        grad_clip=tr["grad_clip"],
        precision=tr["precision"],
        ckpt_every=int(tr["ckpt_every"]),
        keep_last=1,
        seed=spec.seed,
        ema=float(tr["ema"]),
        ema_warmup=int(tr["ema_warmup"]),
        export_at=plan.export_steps(n, {"train": tr, "checkpoints": spec.checkpoints}),
        log_every=max(1, plan.max_steps(n, tr) // 20),
        device=spec.device,
        config_key="studies.diffusion.train",
    )


def fingerprint(spec: TrainSpec) -> str:
    """What a checkpoint must match to be resumed: the run's settings and its images."""
    from pipeline.tracking import config_hash

    key = {k: getattr(spec, k) for k in FINGERPRINT_KEYS}
    return config_hash({**key, "subset_sha256": file_sha256(spec.subset)})


def published_steps(export_at: list[int], last: int, diverged: bool) -> list[int]:
    """The export steps this run reached: all of them, or those before the step where it diverged."""
    return [s for s in export_at if s < last or (s == last and not diverged)]


def publish(out_dir: str | Path, weights_dir: str | Path, steps: list[int]) -> None:
    """Hard-link (or copy) the exports of `steps` into the declared weights directory.

    Snakemake deletes that directory when the job fails or re-runs; the run's own copies stay.
    """
    dest = Path(weights_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for step in steps:
        src, dst = weights_path(out_dir, step), weights_file(dest, step)
        if not src.is_file():
            raise DataError(f"missing export {src} of step {step}: delete {out_dir} to retrain this run")
        dst.unlink(missing_ok=True)
        try:
            os.link(src, dst)
        except OSError:  # a filesystem without hard links
            shutil.copy2(src, dst)


def main(raw: dict[str, Any]) -> None:
    """Entry point of rule diffusion_train (through pipeline.launch): `raw` is a TrainSpec as JSON."""
    from pipeline.train.distributed import setup_env

    spec = job.spec_from(TrainSpec, raw)
    setup_env()  # rank known before anything logs
    params = {k: getattr(spec, k) for k in PARAM_KEYS}
    with job.start(STUDY, device=spec.device, seed=spec.seed, params=params) as j:
        train(spec, j)


def train(spec: TrainSpec, j: job.Job) -> None:
    from pipeline.runtime import place
    from pipeline.train.engine import train_loop

    out_dir = Path(spec.out_dir)
    images, _ = read_images(spec.subset)
    if len(images) != spec.n:
        raise ValueError(f"{spec.subset}: holds {len(images)} images, expected n={spec.n}")
    x_all = to_model_space(images)
    diffusion = Diffusion(DDPMConfig(**spec.ddpm))
    torch.manual_seed(spec.seed)
    model = build_denoiser(spec.model, tuple(x_all.shape[1:]))

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

    cfg = engine_config(spec)
    result = train_loop(model, loss_fn, cfg, out_dir, tracker=j.tracker, desc=f"diffusion n={spec.n} s={spec.seed}",
                        fingerprint=fingerprint(spec))
    if j.rank == 0:
        publish(out_dir, spec.weights_dir, published_steps(cfg.export_at, result.step, result.diverged))
        write_json({"step": result.step, "diverged": result.diverged, "export_at": cfg.export_at}, out_dir / "result.json")
