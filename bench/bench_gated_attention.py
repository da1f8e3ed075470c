"""Training speed of the gated-attention transformer: tokens/s, the gate's time overhead
against its FLOP share, the DeepSpeed engine against a plain PyTorch loop, and (on a GPU)
model FLOPs utilisation. Prints a Markdown table; nothing here is a test.

    python bench/bench_gated_attention.py                # CPU, default model size
    python bench/bench_gated_attention.py --preset gpu   # the gpu preset's model, bf16, on CUDA
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
import torch.nn.functional as F

from pipeline.config import load_config
from pipeline.models.transformer import Transformer, TransformerConfig
from pipeline.train.engine import EngineConfig, train_loop

REPO = Path(__file__).resolve().parents[1]
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 tensor-core peak


def model_for(preset: str, gate: str, ffn: str) -> tuple[Transformer, int, int]:
    cfg = load_config(*([] if preset == "default" else [f"config/presets/{preset}.yaml"]))
    ga, vocab = cfg["studies"]["gated_attention"], cfg["data"]["text"]["vocab_size"]
    m = ga["model"]
    tc = TransformerConfig(vocab_size=vocab, d_model=m["d_model"], n_layers=m["n_layers"], n_heads=m["n_heads"],
                           max_seq_len=m["seq_len"], gate=gate, ffn=ffn, n_experts=m["n_experts"], top_k=m["top_k"])
    return Transformer(tc), m["seq_len"], ga["train"]["batch_size"]


def engine_step_times(gate: str, ffn: str, args, device: str) -> tuple[float, Transformer, int, int]:
    torch.manual_seed(0)
    model, seq, batch = model_for(args.preset, gate, ffn)
    vocab = model.cfg.vocab_size
    data = torch.randint(0, vocab, (batch, seq + 1))

    def loss_fn(module, ctx):
        b = data.to(ctx.device)
        logits = module(b[:, :-1])
        return F.cross_entropy(logits.float().reshape(-1, vocab), b[:, 1:].reshape(-1)), {}

    cfg = EngineConfig(steps=args.steps + args.warmup, lr=1e-3, batch_size=batch, warmup=0,
                       precision="bf16" if device == "cuda" else "fp32", device=device, log_every=10**9)
    with tempfile.TemporaryDirectory() as d:
        res = train_loop(model, loss_fn, cfg, Path(d), desc=f"bench {ffn}/{gate}")
        import pyarrow.parquet as pq

        times = pq.read_table(res.metrics_path).column("step_time").to_pylist()[args.warmup:]
    return statistics.median(times), model, seq, batch


def plain_step_time(args, device: str) -> float:
    torch.manual_seed(0)
    model, seq, batch = model_for(args.preset, "none", "dense")
    model.to(device)
    vocab = model.cfg.vocab_size
    data = torch.randint(0, vocab, (batch, seq + 1), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(args.steps + args.warmup):
        t = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            logits = model(data[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, vocab), data[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="default", choices=["default", "smoke", "gpu", "paper"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    os.environ.setdefault("DS_ACCELERATOR", "cpu" if not torch.cuda.is_available() else "cuda")
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    hw = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {args.threads} thread(s)"
    rows = []
    base = None
    for ffn in ("dense", "moe"):
        for gate in ("none", "headwise", "elementwise"):
            t, model, seq, batch = engine_step_times(gate, ffn, args, device)
            tokens = seq * batch
            flops = model.flops_per_token(seq) * tokens
            gate_share = 6 * model.gate_params() * tokens / flops
            if gate == "none":
                base = t
            row = {"ffn": ffn, "gate": gate, "params_M": model.num_params(False) / 1e6, "step_s": t,
                   "tokens_per_s": tokens / t, "time_overhead": t / base - 1, "gate_flop_share": gate_share}
            if device == "cuda":
                peak = next((v for k, v in PEAK_BF16.items() if k in hw), None)
                row["mfu"] = flops / t / peak if peak else float("nan")
            rows.append(row)
    plain = plain_step_time(args, device)
    ds = rows[0]["step_s"]
    print(f"\n### Gated-attention training speed ({args.preset} preset model, {hw})\n")
    cols = ["ffn", "gate", "params_M", "tokens_per_s", "time_overhead", "gate_flop_share"] + (["mfu"] if device == "cuda" else [])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    print(f"\nDeepSpeed engine vs plain PyTorch loop (dense, vanilla): {ds:.4f} s vs {plain:.4f} s per step, "
          f"ratio {ds / plain:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"hardware": hw, "rows": rows, "engine_vs_plain": ds / plain}, indent=2))


if __name__ == "__main__":
    main()
