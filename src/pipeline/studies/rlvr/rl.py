"""RL with verifiable rewards on the shared engine: GRPO and RLOO with checker rewards.

Each engine step draws `batch_size` training prompts (per rank: the micro-batch) with
`ctx.generator()`, samples `group_size` completions per prompt from the current policy under
no_grad (seeded from the same generator, so a resumed run replays the same rollouts), scores
them with the exact checker (reward 1/0), and takes one optimiser step on the policy-gradient
surrogate −A·log π(completion), averaged over each completion's tokens, then over
completions. One update per rollout batch means the PPO/GRPO importance ratio is exactly 1,
so clipping never acts and is not implemented.

The algorithms differ in the advantage estimator (the paper's finding is that they differ
little):
- GRPO: A_i = (r_i − mean_group r) / (std_group r + eps);
- RLOO: A_i = r_i − mean_{j≠i} r_j (leave-one-out baseline, REINFORCE).
Both are zero-mean within a group: a group whose completions all agree teaches nothing.
An optional KL penalty to the frozen base uses the k3 estimator per token,
exp(q−p) − (q−p) − 1 with p, q the policy and base log-probabilities of the sampled token.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from pipeline.io import read_parquet
from pipeline.job import spec_from
from pipeline.runtime import place
from pipeline.sampling import completion_token_logprobs, generate
from pipeline.studies.rlvr import models, runs
from pipeline.studies.rlvr.specs import RLSpec
from pipeline.studies.rlvr.task import Checker

ALGORITHMS = ("grpo", "rloo")


def advantages(rewards: torch.Tensor, group_size: int, algorithm: str, eps: float = 1e-6) -> torch.Tensor:
    """Per-completion advantages for rewards laid out group by group ([B·G])."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"rl algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if group_size < 2:
        raise ValueError(f"group_size must be ≥ 2 for a group baseline, got {group_size}")
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    r = rewards.float().view(-1, group_size)
    mean = r.mean(dim=1, keepdim=True)
    if algorithm == "grpo":
        adv = (r - mean) / (r.std(dim=1, unbiased=False, keepdim=True) + eps)
    else:
        adv = (r - mean) * group_size / (group_size - 1)  # = r_i − mean of the others
    return adv.reshape(-1)


def policy_loss(module, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                adv: torch.Tensor, *, pad_id: int, ref_model=None, kl_coef: float = 0.0
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """−A·(mean token log-prob) averaged over completions, plus kl_coef·KL(π‖base)."""
    logp, mask = completion_token_logprobs(module, prompts, completions, pad_id=pad_id)
    ntok = mask.sum(dim=1).clamp(min=1)
    seq_logp = logp.sum(dim=1) / ntok
    loss = -(place(adv, seq_logp.device) * seq_logp).mean()
    metrics: dict[str, float] = {}
    if ref_model is not None and kl_coef > 0:
        with torch.no_grad():
            ref_logp, _ = completion_token_logprobs(ref_model, prompts, completions, pad_id=pad_id)
        delta = (ref_logp - logp) * mask
        kl = ((torch.exp(delta) - delta - 1) * mask).sum(dim=1) / ntok
        loss = loss + kl_coef * kl.mean()
        metrics["kl"] = float(kl.mean().detach())
    return loss, metrics


def _raw(module):
    """The plain model inside a DeepSpeed engine (generation needs its cache methods)."""
    return getattr(module, "module", module)


def rl_loss(prompts: list[list[int]], answers: list[str], codec, checker: Checker,
            rl: Mapping[str, Any], ref_model=None):
    """The engine's loss_fn: rollouts, checker rewards, advantages, surrogate loss."""
    G = int(rl["group_size"])
    ref_on: list = []  # the KL reference, once placed on the policy's device (the engine picks that device)

    def loss_fn(module, ctx) -> tuple[torch.Tensor, dict[str, float]]:
        if ref_model is not None and not ref_on:
            ref_on.append(place(ref_model, ctx.device))
        g = ctx.generator()  # the same on every rank: draw for all, keep this rank's rows
        pick = ctx.local(torch.randint(len(prompts), (ctx.global_micro_batch,), generator=g)).tolist()
        seed = int(torch.randint(2**31 - 1, (1,), generator=g)) + ctx.rank
        batch = [prompts[i] for i in pick for _ in range(G)]
        comps = generate(_raw(module), batch, max_new_tokens=rl["max_new_tokens"],
                         temperature=rl["temperature"], top_p=rl["top_p"], seed=seed,
                         eos_id=codec.stop_ids, pad_id=codec.pad_id)
        rewards = torch.tensor([float(checker.check(codec.decode(c), answers[i]))
                                for c, i in zip(comps, (i for i in pick for _ in range(G)))])
        adv = advantages(rewards, G, rl["algorithm"])
        loss, metrics = policy_loss(module, batch, comps, adv, pad_id=codec.pad_id,
                                    ref_model=ref_on[0] if ref_on else None, kl_coef=float(rl["kl_coef"]))
        groups = rewards.view(-1, G)
        metrics.update(reward=float(rewards.mean()),
                       solved_groups=float((groups.max(dim=1).values > 0).float().mean()),
                       informative_groups=float((groups.std(dim=1) > 0).float().mean()),
                       completion_len=float(sum(map(len, comps)) / len(comps)))
        return loss, metrics

    return loss_fn


def run_rl(raw: dict[str, Any]) -> None:
    """Entry point of rule rlvr_rl (through pipeline.launch): `raw` is an RLSpec as JSON (`init` is the base's
    model directory, `train.batch_size` counts prompts)."""
    spec = spec_from(RLSpec, raw)
    rows = read_parquet(spec.data).to_pylist()

    def make_loss(model, mspec):
        codec = models.codec(mspec, spec.tokenizer)
        ref = None
        if float(spec.rl["kl_coef"]) > 0:
            ref, _ = models.load_trained(spec.init)
            ref.requires_grad_(False)
        return rl_loss([codec.prompt_ids(r["prompt"]) for r in rows], [r["answer"] for r in rows],
                       codec, Checker(spec.checker), spec.rl, ref_model=ref)

    runs.train(spec, make_loss)
