"""Evaluate one exported checkpoint (n, seed, step): memorisation, sample quality, losses.

- f_mem: fraction of DDIM samples whose nearest training image is closer than 1/3 of the
  second nearest (pixel L2), with a bootstrap 95% CI (`pipeline.metrics.memorization`).
- quality: Fréchet distance between samples and held-out images in the feature space of the
  study's own classifier (`feature_net`), plus the denoising loss on the training subset
  and on held-out images and their gap.

Samples start from the same noise at every step of a run (the seed depends on n and seed,
not on the step), and the loss draws (t, ε) are fixed too: curves over training steps
compare like with like.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from pipeline.io import DataError, read_json, write_parquet
from pipeline.metrics.frechet import frechet_distance
from pipeline.metrics.memorization import bootstrap_fraction, is_memorised, nearest_two
from pipeline.runtime import place
from pipeline.studies.diffusion.data import read_images, to_model_space, to_pixels
from pipeline.studies.diffusion.ddpm import DDPMConfig, Diffusion
from pipeline.studies.diffusion.denoiser import build_denoiser
from pipeline.studies.diffusion.feature_net import embed, load_feature_net
from pipeline.studies.diffusion.specs import EvalSpec


def run_seed(base: int, n: int, seed: int) -> int:
    return (int(base) * 1_000_003 + int(n) * 1009 + int(seed)) % (2**63 - 1)


@torch.no_grad()
def denoising_loss(diffusion: Diffusion, model: torch.nn.Module, x0: torch.Tensor, points: int, seed: int, batch: int = 1024) -> float:
    """Mean ε-MSE over `points` fixed (image, t, ε) draws, cycling through the images."""
    g = torch.Generator().manual_seed(seed)
    reps = max(1, math.ceil(points / x0.shape[0]))
    xs = x0.repeat(reps, 1, 1, 1)[: max(points, x0.shape[0])]
    total, count = 0.0, 0
    for i in range(0, xs.shape[0], batch):
        xb = xs[i : i + batch]
        t, noise = diffusion.draw(xb, g)
        total += float(((model(diffusion.q_sample(xb, t, noise), t) - noise) ** 2).mean()) * xb.shape[0]
        count += xb.shape[0]
    return total / count


def _missing_row(n: int, seed: int, step: int, why: str) -> dict[str, Any]:
    nan = math.nan
    return {"n": n, "seed": seed, "step": step, "steps_per_n": step / n, "f_mem": nan, "f_mem_lo": nan,
            "f_mem_hi": nan, "fd": nan, "fd_train_heldout": nan, "loss_train": nan, "loss_heldout": nan,
            "loss_gap": nan, "n_samples": 0, "status": why}


def evaluate_checkpoint(
    spec: EvalSpec,
    *,
    weights: str | Path,
    train_result: str | Path,
    subset: str | Path,
    images: str | Path,
    feature_weights: str | Path,
    feature_meta: str | Path,
    out_row: str | Path,
    out_samples: str | Path,
    device: str | torch.device,
) -> dict[str, Any]:
    """Write one row of metrics (and the samples with their nearest neighbours)."""
    n, seed, step = spec.n, spec.seed, spec.step
    result = read_json(train_result)
    if not Path(weights).is_file():
        if result.get("diverged") and int(result.get("step", 0)) <= step:  # no export at or after the diverged step
            row = _missing_row(n, seed, step, f"diverged at step {result['step']}")
            write_parquet([row], out_row)
            write_parquet(pa.table({"sample": pa.array([], pa.int64())}), out_samples)
            return row
        raise DataError(f"missing weights {weights} for step {step}: delete {train_result} to retrain")

    train_img, _ = read_images(subset)
    held_img, _ = read_images(images, split="heldout")
    x_train, x_held = to_model_space(train_img), to_model_space(held_img)
    diffusion = Diffusion(DDPMConfig(**spec.ddpm))
    model = build_denoiser(spec.model, tuple(x_train.shape[1:]))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    place(model, device).eval()

    base = spec.eval_seed
    smp = spec.sampling
    g = torch.Generator().manual_seed(run_seed(base, n, seed))
    samples = diffusion.ddim_sample(model, int(smp["n_samples"]), tuple(x_train.shape[1:]), int(smp["ddim_steps"]),
                                    g, clip=bool(smp["clip"]), batch=int(smp["batch"]),
                                    device=device)
    if not torch.isfinite(samples).all():
        row = _missing_row(n, seed, step, "non-finite samples")
        write_parquet([row], out_row)
        write_parquet(pa.table({"sample": pa.array([], pa.int64())}), out_samples)
        return row

    mem = spec.memorization
    nb = nearest_two(samples, x_train, chunk=int(mem["chunk"]))
    flags = is_memorised(nb.d1, nb.d2, float(mem["ratio"])).numpy()
    lo, hi = bootstrap_fraction(flags, n_boot=int(mem["n_boot"]), seed=run_seed(base, n, seed) + step)

    fnet = load_feature_net(feature_weights, feature_meta)
    f_samples, f_held, f_train = embed(fnet, samples), embed(fnet, x_held), embed(fnet, x_train)
    points = spec.loss_points
    loss_seed = run_seed(base + 1, n, seed)
    loss_train = denoising_loss(diffusion, model, place(x_train, device), points, loss_seed)
    loss_held = denoising_loss(diffusion, model, place(x_held, device), points, loss_seed)
    row = {
        "n": n, "seed": seed, "step": step, "steps_per_n": step / n,
        "f_mem": float(flags.mean()), "f_mem_lo": lo, "f_mem_hi": hi,
        "fd": frechet_distance(f_samples, f_held),
        "fd_train_heldout": frechet_distance(f_train, f_held) if len(f_train) > 1 else math.nan,
        "loss_train": loss_train, "loss_heldout": loss_held, "loss_gap": loss_held - loss_train,
        "n_samples": int(samples.shape[0]), "status": "ok",
    }
    write_parquet([row], out_row)
    pix = to_pixels(samples)
    table = pa.table({
        "sample": np.arange(len(pix), dtype=np.int64),
        "pixels": pa.array([p.tobytes() for p in pix], pa.binary()),
        "nn_index": nb.idx1.numpy(), "d1": nb.d1.numpy(), "d2": nb.d2.numpy(), "memorised": flags,
    }).replace_schema_metadata({"height": str(pix.shape[1]), "width": str(pix.shape[2])})
    write_parquet(table, out_samples)
    return row
