"""Peak memory of completion log-probabilities (SFT/RL/perplexity scoring) against vocabulary size and batch.

    python bench/bench_logprobs.py                                   # CPU: peak RSS of a fresh process
    python bench/bench_logprobs.py --device cuda --batch 64 512 --vocab 32768 151936

`pipeline.sampling.completion_token_logprobs` (forward and backward, as in training) on a
spine transformer (d_model 256, 2 layers) with `batch` sequences of 64 prompt + 192
completion tokens, for each vocabulary size: `chunked` is the pipeline's way (hidden states
of the completion positions only, through the head in chunks of ≤ 2^24 logits, recomputed in
the backward pass), `full` the naive one (float32 log-softmax over the whole [B, T, V] logits).
Each cell runs in a fresh process; the figure is the peak minus the memory after building the
model (CUDA: torch.cuda.max_memory_allocated; CPU: the growth of the peak resident set), so the
model's own weights (which grow with V) are not counted. `chunked` should stay roughly flat in V.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

PROMPT, COMPLETION = 64, 192


def measure(vocab: int, batch: int, mode: str, device: str) -> float:
    """Peak extra memory (MiB) of one forward+backward of the completion log-probs."""
    import torch

    from pipeline.models.transformer import Transformer, TransformerConfig
    from pipeline.sampling import completion_token_logprobs

    class FullLogits(torch.nn.Module):  # the model seen only through its logits: the naive path
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, idx):
            return self.inner(idx)

    torch.manual_seed(0)
    dev = torch.device(device)
    cfg = TransformerConfig(vocab_size=vocab, d_model=256, n_layers=2, n_heads=4, max_seq_len=PROMPT + COMPLETION)
    model = Transformer(cfg).to(dev)
    if mode == "full":
        model = FullLogits(model)
    g = torch.Generator().manual_seed(1)
    prompts = torch.randint(vocab, (batch, PROMPT), generator=g).tolist()
    comps = torch.randint(vocab, (batch, COMPLETION), generator=g).tolist()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    logp, mask = completion_token_logprobs(model, prompts, comps)
    (-(logp.sum() / mask.sum())).backward()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--vocab", type=int, nargs="+", default=[8192, 32768, 131072])
    ap.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--modes", nargs="+", default=["chunked", "full"])
    ap.add_argument("--cell", help=argparse.SUPPRESS)  # internal: one measurement in this process
    args = ap.parse_args()
    if args.cell:
        import torch

        torch.set_num_threads(1)
        v, b, mode = json.loads(args.cell)
        print(json.dumps(measure(v, b, mode, args.device)))
        return
    print(f"peak extra memory (MiB) of log-probs + backward, {PROMPT}+{COMPLETION} tokens per sequence, "
          f"device {args.device}\n")
    print("| batch | vocab | " + " | ".join(args.modes) + " |")
    print("|---|---|" + "---|" * len(args.modes))
    for b in args.batch:
        for v in args.vocab:
            cells = []
            for mode in args.modes:
                out = subprocess.run([sys.executable, __file__, "--device", args.device, "--cell",
                                      json.dumps([v, b, mode])], capture_output=True, text=True)
                cells.append(f"{float(out.stdout.strip().splitlines()[-1]):,.0f}" if out.returncode == 0
                             else "failed (" + (out.stderr.strip().splitlines() or ["?"])[-1][:60] + ")")
            print(f"| {b} | {v:,} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
