"""Supervised fine-tuning: the base model, the teacher, and the distilled student.

The loss is the mean negative log-likelihood of the target completion (answer tokens and
EOS) given the prompt; prompt tokens are not scored. Each micro-batch draws its rows with
`ctx.generator()`, so the data order is a pure function of the step (exact resume).
Base and teacher differ only in size and steps; the distilled student starts from the
base and trains on the teacher's sampled solutions (distill.py writes those).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from pipeline.io import read_parquet
from pipeline.sampling import completion_token_logprobs
from pipeline.studies.rlvr import models, runs


def encode_rows(codec, rows, target_key: str = "target") -> tuple[list[list[int]], list[list[int]]]:
    return ([codec.prompt_ids(r["prompt"]) for r in rows], [codec.target_ids(r[target_key]) for r in rows])


def sft_loss(prompts: list[list[int]], targets: list[list[int]], pad_id: int):
    """The engine's loss_fn: completion NLL on a micro-batch drawn with ctx.generator()."""
    if not prompts:
        raise ValueError("SFT data is empty")

    def loss_fn(module, ctx) -> tuple[torch.Tensor, dict[str, float]]:
        pick = ctx.local(torch.randint(len(prompts), (ctx.global_micro_batch,), generator=ctx.generator())).tolist()
        logp, mask = completion_token_logprobs(module, [prompts[i] for i in pick],
                                               [targets[i] for i in pick], pad_id=pad_id)
        return -(logp.sum() / mask.sum()), {}

    return loss_fn


def run_sft(spec: Mapping[str, Any]) -> None:
    """Entry point. spec: out_dir, model|init, data (Parquet with prompt and `target_key`),
    target_key, tokenizer, train (engine keys), seed, rule, config_key, threads, device,
    tracking, wildcards."""
    rows = read_parquet(spec["data"]).to_pylist()
    key = spec.get("target_key", "target")
    if rows and key not in rows[0]:
        raise KeyError(f"{spec['data']} has no column {key!r}")

    def make_loss(model, mspec):
        codec = models.codec(mspec, spec["tokenizer"])
        prompts, targets = encode_rows(codec, rows, key)
        return sft_loss(prompts, targets, codec.pad_id)

    runs.train(spec, spec.get("rule", "sft"), make_loss)
