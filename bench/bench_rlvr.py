"""RLVR benchmarks: sampling tokens/s with and without the KV cache, and RL steps/s.

    python bench/bench_rlvr.py                      # CPU, 1 thread, the issue's table
    python bench/bench_rlvr.py --device cuda --threads 8 --batch 256 --rl-steps 20

Sampling: `pipeline.sampling.generate` on a spine transformer (d_model 128, 3 layers by
default), `batch` prompts of 8 tokens, 64 new tokens each at temperature 1 (no EOS, so every
sequence runs to 64). Without the cache each step recomputes the whole prefix. The first
call is a warm-up and not timed.

RL: GRPO steps of the study's loss on the shared engine (DeepSpeed), the CPU default's base
size (d_model 64, 3 layers), 64 prompts × 8 samples of "ab+cd=" per step; steps/s is the
median of the engine's own per-step times (start-up excluded). Prints Markdown tables; the
numbers depend on the machine and on whatever else runs on it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pipeline.io import read_parquet
from pipeline.models.transformer import Transformer, TransformerConfig
from pipeline.sampling import generate


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def sampling_rate(model, prompts, new_tokens: int, use_cache: bool, device: torch.device) -> float:
    kw = dict(max_new_tokens=new_tokens, temperature=1.0, seed=0, use_cache=use_cache)
    generate(model, prompts[:2], **{**kw, "max_new_tokens": 4})  # warm-up
    sync(device)
    t = time.perf_counter()
    out = generate(model, prompts, **kw)
    sync(device)
    return sum(map(len, out)) / (time.perf_counter() - t)


def rl_rate(steps: int, device: str, threads: int) -> tuple[float, float]:
    """(median steps/s, mean reward) of GRPO on a freshly trained-for-nothing base.

    The specs are the study's own (`specs.base`, `specs.rl` from the default config), pointed at a
    temporary directory; the jobs run as they do under Snakemake, through `pipeline.job`.
    """
    from dataclasses import asdict, replace

    from pipeline.config import load_config, validate_config
    from pipeline.launch import IDENTITY_ENV, RUNTIME_ENV
    from pipeline.studies.rlvr import base, rl, specs
    from pipeline.studies.rlvr.task import write_task

    os.environ[RUNTIME_ENV] = json.dumps({"threads": threads, "tracking": {"uri": None, "enabled": False,
                                                                           "system_metrics": False}})
    config = validate_config(load_config())
    config["train"]["device"] = device
    study = config["studies"]["rlvr"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {"data": str(tmp / "train.parquet"), "tokenizer": str(tmp / "tok.json")}
        write_task({**study["task"], "n_train": 2000, "n_heldout": 50, "checker": "strict"}, files["data"],
                   tmp / "heldout.parquet", files["tokenizer"])
        os.environ[IDENTITY_ENV] = json.dumps({"rule": "rlvr_base", "wildcards": {}})
        base.run_sft(asdict(replace(specs.base(config), out_dir=str(tmp / "base"), **files,
                                    train={**study["base"]["train"], "steps": 1, "ckpt_every": 0})))
        os.environ[IDENTITY_ENV] = json.dumps({"rule": "rlvr_rl", "wildcards": {"rlvr_algo": "grpo", "seed": "0"}})
        run = replace(specs.rl(config, {"rlvr_algo": "grpo", "seed": "0"}), out_dir=str(tmp / "rl"),
                      init=str(tmp / "base"), checker="strict", **files,
                      train={**study["rl"]["train"], "steps": steps, "ckpt_every": 0})
        rl.run_rl(asdict(run))
        rows = read_parquet(tmp / "rl/metrics.parquet").to_pylist()
    times = [r["step_time"] for r in rows[1:]] or [rows[0]["step_time"]]
    return 1.0 / statistics.median(times), statistics.mean(r["reward"] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32, help="prompts decoded together")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--rl-steps", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=64, d_model=args.d_model, n_layers=args.layers, n_heads=4,
                            max_seq_len=8 + args.new_tokens)
    model = Transformer(cfg).to(device).eval()
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(3, 64, (args.batch, 8), generator=g).tolist()
    cached = sampling_rate(model, prompts, args.new_tokens, True, device)
    full = sampling_rate(model, prompts, args.new_tokens, False, device)
    print(f"## Sampling ({args.device}, {args.threads} thread(s), d_model {args.d_model}, {args.layers} layers, "
          f"batch {args.batch}, {args.new_tokens} new tokens)\n")
    print("| KV cache | tokens/s |\n|---|---|")
    print(f"| on | {cached:,.0f} |\n| off | {full:,.0f} |")
    print(f"\nspeed-up with the cache: {cached / full:.1f}× (target ≥ 5×)\n")
    rate, reward = rl_rate(args.rl_steps, args.device, args.threads)
    print(f"## RL (GRPO on the engine, 64 prompts × 8 samples, d_model 64, 3 layers, {args.rl_steps} steps)\n")
    print(f"| steps/s | rollouts/s | mean reward |\n|---|---|---|\n| {rate:.2f} | {rate * 512:,.0f} | {reward:.3f} |")


if __name__ == "__main__":
    main()
