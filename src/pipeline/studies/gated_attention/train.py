"""Train one language model of the comparison (a gate × FFN × seed, or a stress run).

Entry point for `python -m pipeline.launch ... pipeline.studies.gated_attention.train:main`.
Every variant sees the same token windows for a seed (the batch is a function of the step),
so differences come from the architecture alone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pipeline import runtime
from pipeline.data.text import TokenShards
from pipeline.models.transformer import Transformer, TransformerConfig
from pipeline.studies.gated_attention import STUDY
from pipeline.tracking import Tracker, config_hash
from pipeline.train.distributed import setup_env
from pipeline.train.engine import EngineConfig, StepContext, train_loop


def build_model(model: dict[str, Any], gate: str, ffn: str, vocab_size: int, ep_size: int | None = None) -> Transformer:
    cfg = TransformerConfig(
        vocab_size=vocab_size, d_model=model["d_model"], n_layers=model["n_layers"],
        n_heads=model["n_heads"], max_seq_len=model["seq_len"], gate=gate, ffn=ffn,
        n_experts=model["n_experts"], top_k=model["top_k"],
        ep_size=model["ep_size"] if ep_size is None else ep_size,
    )
    return Transformer(cfg)


def engine_config(train: dict[str, Any], seed: int, key: str, device: str) -> EngineConfig:
    return EngineConfig(
        steps=train["steps"], lr=train["lr"], batch_size=train["batch_size"], grad_accum=train["grad_accum"],
        warmup=train["warmup"], weight_decay=train["weight_decay"], grad_clip=train["grad_clip"],
        zero_stage=train["zero_stage"], precision=train["precision"], ckpt_every=train["ckpt_every"],
        seed=seed, config_key=key, device=device,
    )


def main(spec: dict[str, Any]) -> None:
    """spec: manifest, out_dir, model, train, gate, ffn, seed, threads, device, tracking, wildcards, config_key."""
    runtime.setup(spec["threads"], spec["device"], seed=spec["seed"])
    setup_env()  # rank known before anything logs
    shards = TokenShards(spec["manifest"], "train", verify_checksums=spec.get("verify_checksums", False))
    model = build_model(spec["model"], spec["gate"], spec["ffn"], shards.vocab_size)
    seq_len, aux_coef = spec["model"]["seq_len"], spec["model"]["aux_loss_coef"]
    vocab = shards.vocab_size

    def loss_fn(module: torch.nn.Module, ctx: StepContext):
        batch = runtime.place(ctx.local(shards.sample(ctx.generator(), ctx.global_micro_batch, seq_len - 1)), ctx.device)
        logits = module(batch[:, :-1])
        ce = F.cross_entropy(logits.float().reshape(-1, vocab), batch[:, 1:].reshape(-1))
        aux = module.module.aux_loss if hasattr(module, "module") else module.aux_loss
        loss = ce + aux_coef * aux if spec["ffn"] == "moe" else ce
        return loss, {"ce": ce.item(), "aux_loss": float(aux)}

    cfg = engine_config(spec["train"], spec["seed"], spec["config_key"], spec["device"])
    params = {k: spec[k] for k in ("model", "train", "gate", "ffn", "seed")}
    with Tracker(STUDY, "train", wildcards=spec["wildcards"], params=params,
                 uri=spec["tracking"]["uri"], enabled=spec["tracking"]["enabled"],
                 rank=int(os.environ.get("RANK", "0"))) as tracker:
        result = train_loop(model, loss_fn, cfg, Path(spec["out_dir"]), tracker=tracker,
                            desc=f"{spec['ffn']}/{spec['gate']}/s{spec['seed']}",
                            fingerprint=config_hash({**params, "manifest": spec["manifest"]}))
        if result.diverged:
            tracker.log_metrics({"diverged": 1.0}, result.step)
