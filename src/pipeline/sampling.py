"""Batched sampling and completion likelihoods for the spine transformer (and adapters).

A model here is anything called as `model(idx)` → logits [B, T, V] that also offers
`model.new_cache(batch, max_len)` and `model(idx, cache=cache)` appending to the cache
(the spine `Transformer`, or the Hugging Face adapter of the RLVR study).

Padding without attention masks: the spine transformer has none, so `generate` never pads a
prompt. Prompts are grouped by length and each group is decoded as one batch (or several
of `batch_size`), which is exactly what left padding with a mask would compute, and the
results are returned in the caller's order. Completions end at, and include, the first
`eos_id` (one id, or several: a chat model's end of turn and end of text); a completion that
reaches `max_new_tokens` has none. Likelihoods right-pad
prompt+completion, which is exact for a causal model: padding sits after every scored token.

Determinism: one `torch.Generator` seeded with `seed` drives every draw, and groups are
visited in a fixed order, so the same inputs and seed give the same tokens on CPU.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
import torch

from pipeline.progress import progress
from pipeline.runtime import device_of


def filter_probs(logits: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0,
                 min_p: float = 0.0) -> torch.Tensor:
    """Next-token probabilities after temperature, min-p and nucleus (top-p) filtering.

    `temperature` must be > 0 here (greedy decoding is handled by the caller). The most
    likely token always survives both filters.
    """
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if min_p > 0.0:
        floor = min_p * probs.max(dim=-1, keepdim=True).values
        probs = probs.masked_fill(probs < floor, 0.0)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_p.cumsum(dim=-1) - sorted_p  # mass of strictly more likely tokens
        sorted_p = sorted_p.masked_fill(mass_before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return probs / probs.sum(dim=-1, keepdim=True)


def _check_args(max_new_tokens: int, temperature: float, top_p: float, min_p: float) -> None:
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be ≥ 0, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if not 0.0 <= min_p < 1.0:
        raise ValueError(f"min_p must be in [0, 1), got {min_p}")


@torch.no_grad()
def _decode_batch(model, idx: torch.Tensor, max_new_tokens: int, temperature: float, top_p: float,
                  min_p: float, stops: torch.Tensor | None, use_cache: bool,
                  gen: torch.Generator) -> torch.Tensor:
    """New tokens [B, ≤max_new_tokens] for prompts `idx` [B, T] of equal length."""
    B = idx.shape[0]
    cache = model.new_cache(B, idx.shape[1] + max_new_tokens) if use_cache else None
    seq, step_in = idx, idx
    done = torch.zeros(B, dtype=torch.bool, device=idx.device)
    out = []
    for _ in range(max_new_tokens):
        logits = model(step_in, cache=cache)[:, -1] if use_cache else model(seq)[:, -1]
        if temperature == 0.0:
            nxt = logits.argmax(dim=-1)
        else:
            probs = filter_probs(logits, temperature, top_p, min_p)
            nxt = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
        out.append(nxt)
        if stops is not None:
            done |= torch.isin(nxt, stops)
            if bool(done.all()):
                break
        step_in = nxt[:, None]
        if not use_cache:
            seq = torch.cat([seq, step_in], dim=1)
    return torch.stack(out, dim=1)


def generate(model: torch.nn.Module, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
             temperature: float = 1.0, top_p: float = 1.0, min_p: float = 0.0, seed: int = 0,
             eos_id: int | Sequence[int] | None = None, pad_id: int = 0, use_cache: bool = True,
             batch_size: int = 1024, desc: str = "") -> list[list[int]]:
    """Sample one completion per prompt (repeat a prompt to get several).

    temperature 0 is greedy decoding. Returns completions only, in the order of `prompts`,
    each cut after its first `eos_id` (any of them, when several). `pad_id` is accepted for interface symmetry with
    padded decoders; no prompt is ever padded here (see the module docstring).
    """
    _check_args(max_new_tokens, temperature, top_p, min_p)
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (a BOS token will do)")
    limit = getattr(getattr(model, "cfg", None), "max_seq_len", None)
    longest = max((len(p) for p in prompts), default=0)
    if limit is not None and longest + max_new_tokens > limit:
        raise ValueError(f"prompt length {longest} + max_new_tokens {max_new_tokens} exceeds the "
                         f"model's max_seq_len {limit}")
    device = device_of(model)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    stop_set = set() if eos_id is None else {int(eos_id)} if isinstance(eos_id, int) else {int(i) for i in eos_id}
    stops = torch.tensor(sorted(stop_set), dtype=torch.long, device=device) if stop_set else None
    groups: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        groups[len(p)].append(i)
    chunks = [(L, idxs[s:s + batch_size]) for L in sorted(groups)
              for idxs in [groups[L]] for s in range(0, len(idxs), batch_size)]
    results: list[list[int]] = [[] for _ in prompts]
    was_training = model.training
    model.eval()
    try:
        for _L, members in progress(chunks, desc=desc or "sampling", unit="batch"):
            idx = torch.tensor([list(prompts[i]) for i in members], dtype=torch.long, device=device)
            new = _decode_batch(model, idx, max_new_tokens, temperature, top_p, min_p, stops,
                                use_cache, gen).tolist()
            for i, toks in zip(members, new):
                end = next((k for k, t in enumerate(toks) if t in stop_set), None)
                results[i] = toks if end is None else toks[: end + 1]
    finally:
        model.train(was_training)
    return results


def token_logprobs(hidden: torch.Tensor, head, targets: torch.Tensor, temperature: float = 1.0,
                   max_elements: int = 1 << 24) -> torch.Tensor:
    """log softmax(head(hidden) / temperature)[target] for rows of `hidden` [n, d], in bounded memory.

    Rows go through the head in chunks of at most `max_elements` logits (64 MB in float32),
    each reduced at once to log-sum-exp and the target's logit; under autograd each chunk is
    recomputed in the backward pass (activation checkpointing), so neither pass ever holds
    more than one chunk of vocabulary-sized logits, whatever the batch or vocabulary.
    """
    if hidden.shape[0] == 0:
        return hidden.new_zeros(0, dtype=torch.float32)

    def chunk_logprobs(h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        logits = head(h).float() / temperature
        return logits.gather(1, t[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)

    vocab = head(hidden[:1]).shape[-1]
    rows = max(1, max_elements // vocab)
    checkpointed = torch.is_grad_enabled() and hidden.requires_grad
    out = []
    for h, t in zip(hidden.split(rows), targets.split(rows)):
        if checkpointed:
            from torch.utils.checkpoint import checkpoint

            out.append(checkpoint(chunk_logprobs, h, t, use_reentrant=False))
        else:
            out.append(chunk_logprobs(h, t))
    return torch.cat(out)


def completion_token_logprobs(model: torch.nn.Module, prompts: Sequence[Sequence[int]],
                              completions: Sequence[Sequence[int]], *, pad_id: int = 0,
                              temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of `completions` given `prompts`, with gradients.

    Returns (logp, mask), both [N, max completion length]; mask is 1 on real completion
    tokens. Sequences are right-padded with `pad_id`, which is exact for a causal model.
    A model offering `hidden_states(idx)` and `head(h)` (the spine transformer, the HF
    adapter) is scored by `token_logprobs` on the completion positions only, in memory that
    does not grow with the vocabulary; any other model through its full logits.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (a BOS token will do)")
    device = device_of(model)
    lp = torch.tensor([len(p) for p in prompts], device=device)
    lc = torch.tensor([len(c) for c in completions], device=device)
    if int(lc.max()) == 0:  # nothing to score
        zeros = torch.zeros(len(prompts), 1, device=device)
        return zeros, zeros.clone()
    T, tc = int((lp + lc).max()), int(lc.max())
    seqs = torch.full((len(prompts), T), pad_id, dtype=torch.long, device=device)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        seqs[i, : len(p) + len(c)] = torch.tensor([*p, *c], dtype=torch.long)
    j = torch.arange(tc, device=device)
    pos = (lp[:, None] - 1 + j).clamp(max=T - 2)  # the position that predicts completion token j
    mask = (j[None, :] < lc[:, None]).float()
    targets = seqs.gather(1, pos + 1)
    rows = torch.arange(len(prompts), device=device)[:, None]
    raw = getattr(model, "module", model)  # the plain model inside a DeepSpeed engine
    if hasattr(raw, "hidden_states") and hasattr(raw, "head"):
        keep = mask.bool()
        hidden = raw.hidden_states(seqs[:, :-1])[rows.expand_as(pos)[keep], pos[keep]]
        logp = torch.zeros(len(prompts), tc, device=device)
        logp = logp.masked_scatter(keep, token_logprobs(hidden, raw.head, targets[keep], temperature))
        return logp, mask
    logp_all = torch.log_softmax(model(seqs[:, :-1]).float() / temperature, dim=-1)
    logp = logp_all[rows, pos, targets]
    return logp * mask, mask


@torch.no_grad()
def completion_loglik(model: torch.nn.Module, prompts: Sequence[Sequence[int]],
                      completions: Sequence[Sequence[int]], *, pad_id: int = 0,
                      batch_size: int = 512, desc: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(sum of log-probabilities, number of tokens) of each completion given its prompt."""
    was_training = model.training
    model.eval()
    sums, counts = [], []
    try:
        for s in progress(range(0, len(prompts), batch_size), desc=desc or "log-likelihood", unit="batch"):
            logp, mask = completion_token_logprobs(model, prompts[s:s + batch_size],
                                                   completions[s:s + batch_size], pad_id=pad_id)
            sums.append(logp.sum(dim=1).double().cpu().numpy())
            counts.append(mask.sum(dim=1).long().cpu().numpy())
    finally:
        model.train(was_training)
    if not sums:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(sums), np.concatenate(counts)
