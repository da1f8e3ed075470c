"""Diffusion benchmarks: training images/s, DDIM sampling images/s, and memorization_fraction
against a naive full torch.cdist (same result, bounded memory).

    python bench/bench_diffusion.py                       # CPU, 1 thread, the issue's table
    python bench/bench_diffusion.py --device cuda --threads 8

Training: one optimiser step (DDPM ε-MSE, Adam) on a batch of the given images, timed after
warm-up, for the CPU residual MLP on 8×8 and the U-Net on 8×8 / 28×28 (CPU-sized) and the
paper's U-Net on 32×32 (GPU only, unless --paper-unet-on-cpu). Sampling: DDIM with η = 0.
Memorisation: 10k samples × 50k training images of 784 pixels (MNIST-sized) on GPU; on CPU
the default is smaller (--mem-train/--mem-samples). The naive baseline materialises the
whole distance matrix; its memory is printed beside the chunked search's block. Numbers
depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import time

import torch

from pipeline.metrics.memorization import is_memorised, memorization_fraction
from pipeline.studies.diffusion.ddpm import DDPMConfig, Diffusion
from pipeline.studies.diffusion.denoiser import build_denoiser

MODELS = {
    "mlp 3×256 (8×8)": ({"kind": "mlp", "mlp": {"width": 256, "depth": 3}}, 8),
    "U-Net W16 (1,2) (8×8)": ({"kind": "unet", "unet": {"base_width": 16, "channel_mult": [1, 2], "num_res_blocks": 1,
                                                        "attn_levels": [1], "dropout": 0.0, "norm_groups": 8}}, 8),
    "U-Net W32 (1,2,4) (28×28)": ({"kind": "unet", "unet": {"base_width": 32, "channel_mult": [1, 2, 4], "num_res_blocks": 2,
                                                            "attn_levels": [1, 2], "dropout": 0.1}}, 28),
    "paper U-Net W32 (1,2,4) (32×32)": ({"kind": "unet", "unet": {}}, 32),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, seconds: float, device: torch.device, warmup: int = 2) -> tuple[int, float]:
    for _ in range(warmup):
        fn()
    sync(device)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds or n == 0:
        fn()
        n += 1
    sync(device)
    return n, time.perf_counter() - t


def train_rate(model_cfg, side: int, batch: int, device: torch.device, seconds: float) -> float:
    torch.manual_seed(0)
    d = Diffusion(DDPMConfig())
    model = build_denoiser(model_cfg, (1, side, side)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 1, side, side, device=device) * 2 - 1
    g = torch.Generator().manual_seed(0)

    def step():
        t, noise = d.draw(x, g)
        loss = d.loss_at(model, x, t.to(device), noise.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    n, dt = timed(step, seconds, device)
    return n * batch / dt


def sample_rate(model_cfg, side: int, n_samples: int, steps: int, device: torch.device) -> float:
    torch.manual_seed(0)
    d = Diffusion(DDPMConfig())
    model = build_denoiser(model_cfg, (1, side, side)).to(device).eval()
    run = lambda: d.ddim_sample(model, n_samples, (1, side, side), steps, torch.Generator().manual_seed(0),  # noqa: E731
                                batch=n_samples, device=device)
    n, dt = timed(run, 0.0, device, warmup=1)
    return n * n_samples / dt


def naive_fraction(samples: torch.Tensor, train: torch.Tensor, ratio: float = 1 / 3) -> float:
    d = torch.cdist(samples, train)  # the whole S × N matrix at once
    two = d.topk(2, dim=1, largest=False).values
    return int(is_memorised(two[:, 0], two[:, 1], ratio).sum()) / samples.shape[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0, help="time per training measurement")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--samples", type=int, default=256, help="images per DDIM measurement")
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--mem-train", type=int, default=None, help="training images (default 50k on GPU, 10k on CPU)")
    ap.add_argument("--mem-samples", type=int, default=None, help="samples (default 10k on GPU, 2k on CPU)")
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--paper-unet-on-cpu", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    print(f"device {device}, {args.threads} thread(s), torch {torch.__version__}\n")

    print(f"| model | training images/s (batch {args.batch}) | DDIM-{args.ddim_steps} sampling images/s |")
    print("|---|---|---|")
    for name, (cfg, side) in MODELS.items():
        if name.startswith("paper") and not (gpu or args.paper_unet_on_cpu):
            print(f"| {name} | (GPU only; --paper-unet-on-cpu) | |")
            continue
        tr = train_rate(cfg, side, args.batch, device, args.seconds)
        n_smp = args.samples if gpu or side <= 8 else max(16, args.samples // 8)
        sr = sample_rate(cfg, side, n_smp, args.ddim_steps, device)
        print(f"| {name} | {tr:,.0f} | {sr:,.1f} |", flush=True)

    n_train = args.mem_train or (50_000 if gpu else 10_000)
    n_samp = args.mem_samples or (10_000 if gpu else 2_000)
    g = torch.Generator().manual_seed(0)
    train = torch.rand(n_train, 784, generator=g)
    samples = torch.cat([train[: n_samp // 10] + 0.01 * torch.randn(n_samp // 10, 784, generator=g),
                         torch.rand(n_samp - n_samp // 10, 784, generator=g)])
    train, samples = train.to(device), samples.to(device)
    print(f"\nmemorization_fraction, {n_samp:,} samples × {n_train:,} training images × 784 pixels\n")
    print("| method | seconds | pairs/s | peak distance block (MB) | f_mem |")
    print("|---|---|---|---|---|")
    sync(device)
    t = time.perf_counter()
    f_chunk = memorization_fraction(samples, train, chunk=args.chunk, n_boot=200)[0]
    sync(device)
    dt_chunk = time.perf_counter() - t
    t = time.perf_counter()
    f_naive = naive_fraction(samples, train)
    sync(device)
    dt_naive = time.perf_counter() - t
    pairs = n_samp * n_train
    print(f"| chunked (chunk {args.chunk}) | {dt_chunk:.2f} | {pairs / dt_chunk:,.0f} | {min(args.chunk, n_samp) * min(args.chunk, n_train) * 4 / 2**20:,.0f} | {f_chunk:.4f} |")
    print(f"| naive torch.cdist | {dt_naive:.2f} | {pairs / dt_naive:,.0f} | {pairs * 4 / 2**20:,.0f} | {f_naive:.4f} |")
    print(f"\nsame result: {f_chunk == f_naive} (the chunked search re-ranks candidates with exact distances; "
          "the naive one keeps cdist's values)")


if __name__ == "__main__":
    main()
