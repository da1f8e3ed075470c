"""Train one language model of the comparison (a gate × FFN × seed, or a stress run).

Entry point for `python -m pipeline.launch ... pipeline.studies.gated_attention.train:main`.
Every variant sees the same token windows for a seed (the batch is a function of the step),
so differences come from the architecture alone. The windows come from the tokenised corpus
or, by default, fresh Bigram-Backcopy sequences (`pipeline.data.synthetic`): unlimited
unique data, which an attention sink needs to form.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pipeline import job, runtime
from pipeline.job import spec_from
from pipeline.data.synthetic import BigramBackcopy
from pipeline.data.text import TokenShards
from pipeline.models.transformer import Transformer, TransformerConfig
from pipeline.studies.gated_attention import STUDY
from pipeline.studies.gated_attention.specs import TrainSpec
from pipeline.tracking import config_hash
from pipeline.train.checkpoint import input_stamps
from pipeline.train.distributed import setup_env
from pipeline.train.engine import EngineConfig, StepContext, train_loop


def data_source(data: dict[str, Any], split: str, verify_checksums: bool = False) -> TokenShards | BigramBackcopy:
    """The study's windows: `sample(gen, batch, seq_len)` and `fixed(n, seq_len)` either way.

    data: the study's `data` block plus `path` (the bigram statistics or the token manifest).
    Bigram-Backcopy has no splits: evaluation draws from its own fixed generator instead.
    """
    if data["source"] == "bigram_backcopy":
        return BigramBackcopy(data["path"], data["triggers"])
    return TokenShards(data["path"], split, verify_checksums=verify_checksums)


def build_model(model: dict[str, Any], gate: str, ffn: str, vocab_size: int, ep_size: int | None = None) -> Transformer:
    cfg = TransformerConfig(
        vocab_size=vocab_size, d_model=model["d_model"], n_layers=model["n_layers"],
        n_heads=model["n_heads"], max_seq_len=model["seq_len"], positions=model["positions"], gate=gate, ffn=ffn,
        n_experts=model["n_experts"], top_k=model["top_k"],
        ep_size=model["ep_size"] if ep_size is None else ep_size,
    )
    return Transformer(cfg)


def class_losses(logits: torch.Tensor, batch: torch.Tensor, copy_mask: torch.Tensor) -> dict[str, float]:
    """Cross-entropy at the backcopy targets and at the bigram ones (the task's own diagnostics)."""
    ce = F.cross_entropy(logits.float().transpose(1, 2), batch[:, 1:], reduction="none")
    mask = copy_mask[:, 1:].to(ce.device)
    nan = torch.tensor(float("nan"))
    return {"loss_copy": (ce[mask].mean() if mask.any() else nan).item(),
            "loss_bigram": (ce[~mask].mean() if (~mask).any() else nan).item()}


def engine_config(train: dict[str, Any], seed: int, key: str, device: str) -> EngineConfig:
    return EngineConfig(
        steps=train["steps"], lr=train["lr"], batch_size=train["batch_size"], grad_accum=train["grad_accum"],
        warmup=train["warmup"], weight_decay=train["weight_decay"], grad_clip=train["grad_clip"],
        zero_stage=train["zero_stage"], precision=train["precision"], ckpt_every=train["ckpt_every"],
        seed=seed, config_key=key, device=device,
    )


def main(raw: dict[str, Any]) -> None:
    """Entry point of rule ga_train (through pipeline.launch): `raw` is a TrainSpec as JSON."""
    spec = spec_from(TrainSpec, raw)
    setup_env()  # rank known before anything logs
    params = {k: getattr(spec, k) for k in ("data", "model", "train", "gate", "ffn", "seed")}
    with job.start(STUDY, device=spec.device, seed=spec.seed, params=params) as j:
        train(spec, j, fingerprint=config_hash({**params, "inputs": input_stamps(spec.data["path"])}))


def train(spec: TrainSpec, j: job.Job, fingerprint: str) -> None:
    shards = data_source(spec.data, "train", verify_checksums=spec.verify_checksums)
    model = build_model(spec.model, spec.gate, spec.ffn, shards.vocab_size)
    copies = getattr(shards, "copy_targets", None)  # the task's own positions, where it defines them
    seq_len, aux_coef = spec.model["seq_len"], spec.model["aux_loss_coef"]
    vocab = shards.vocab_size

    def loss_fn(module: torch.nn.Module, ctx: StepContext):
        rows = ctx.local(shards.sample(ctx.generator(), ctx.global_micro_batch, seq_len - 1))
        batch = runtime.place(rows, ctx.device)
        logits = module(batch[:, :-1])
        ce = F.cross_entropy(logits.float().reshape(-1, vocab), batch[:, 1:].reshape(-1))
        aux = module.module.aux_loss if hasattr(module, "module") else module.aux_loss
        loss = ce + aux_coef * aux if spec.ffn == "moe" else ce
        logs = {"ce": ce.item(), "aux_loss": float(aux)}
        if copies is not None:
            logs.update(class_losses(logits.detach(), batch, copies(rows)))  # the task's tables live on the CPU
        return loss, logs

    cfg = engine_config(spec.train, spec.seed, spec.config_key, spec.device)
    result = train_loop(model, loss_fn, cfg, Path(spec.out_dir), tracker=j.tracker,
                        desc=f"{spec.ffn}/{spec.gate}/s{spec.seed}", fingerprint=fingerprint)
    if result.diverged:
        j.tracker.log_metrics({"diverged": 1.0}, result.step)
