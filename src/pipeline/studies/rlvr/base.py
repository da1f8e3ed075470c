"""Supervised fine-tuning: the base model, the teacher, and the distilled student.

The loss is the mean negative log-likelihood of the target completion (answer tokens and
EOS) given the prompt; prompt tokens are not scored. Each micro-batch draws its rows with
`ctx.generator()`, so the data order is a pure function of the step (exact resume).
Base and teacher differ only in size and steps; the distilled student starts from the
base and trains on the teacher's sampled solutions (distill.py writes those).
"""
from __future__ import annotations

from typing import Any

import torch

from pipeline.io import read_parquet
from pipeline.job import spec_from
from pipeline.sampling import completion_token_logprobs
from pipeline.studies.rlvr import models, runs
from pipeline.studies.rlvr.specs import SFTSpec


def encode_rows(codec, rows) -> tuple[list[list[int]], list[list[int]]]:
    return ([codec.prompt_ids(r["prompt"]) for r in rows], [codec.target_ids(r["target"]) for r in rows])


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


def run_sft(raw: dict[str, Any]) -> None:
    """Entry point of rules rlvr_base, rlvr_teacher and rlvr_distill (through pipeline.launch): `raw` is an
    SFTSpec as JSON; its data is a Parquet of rows with `prompt` and `target` (task splits, teacher solutions)."""
    spec = spec_from(SFTSpec, raw)
    rows = read_parquet(spec.data).to_pylist()
    if rows and "target" not in rows[0]:
        raise KeyError(f"{spec.data} has no column 'target'")

    def make_loss(model, mspec):
        codec = models.codec(mspec, spec.tokenizer)
        prompts, targets = encode_rows(codec, rows)
        return sft_loss(prompts, targets, codec.pad_id)

    runs.train(spec, make_loss)
