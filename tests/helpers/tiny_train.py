"""A tiny language-model training entry for engine tests (run through pipeline.launch).

`spec["signal_at"]`: the process sends itself SIGTERM during that step, the way SLURM's
pre-timeout signal arrives in the middle of work.
"""
import json
import os
import signal
from pathlib import Path

import torch
import torch.nn.functional as F

from pipeline.models.transformer import Transformer, TransformerConfig
from pipeline.train.engine import EngineConfig, train_loop


def main(spec: dict) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(spec.get("seed", 0))
    cfg = TransformerConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=2, max_seq_len=32,
                            gate=spec.get("gate", "elementwise"), ffn=spec.get("ffn", "dense"),
                            n_experts=4, top_k=2, ep_size=spec.get("ep_size", 1))
    model = Transformer(cfg)
    data = torch.randint(0, 64, (1024, 17), generator=torch.Generator().manual_seed(1))
    rank = int(os.environ.get("RANK", "0"))

    def loss_fn(module, ctx):
        if ctx.step == spec.get("signal_at", -1) and ctx.micro == 0 and rank == 0:
            os.kill(os.getpid(), signal.SIGTERM)
        idx = ctx.local(torch.randint(0, len(data), (ctx.global_micro_batch,), generator=ctx.generator()))
        batch = data[idx].to(ctx.device)
        logits = module(batch[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, 64), batch[:, 1:].reshape(-1))
        if spec.get("ffn") == "moe":
            loss = loss + 0.01 * module.module.aux_loss
        return loss, {}

    ecfg = EngineConfig(steps=spec["steps"], lr=spec.get("lr", 3e-3), batch_size=spec.get("batch_size", 8),
                        grad_accum=spec.get("grad_accum", 1), warmup=2, zero_stage=spec.get("zero", 0),
                        ckpt_every=spec.get("ckpt_every", 0), seed=spec.get("seed", 0), device="cpu",
                        config_key="test.train")
    result = train_loop(model, loss_fn, ecfg, Path(spec["out"]), fingerprint=json.dumps(spec.get("fp", "x")))
    if rank == 0:
        (Path(spec["out"]) / "result.json").write_text(json.dumps({"step": result.step, "resumed_from": result.resumed_from}))
