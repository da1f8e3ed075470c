"""Bigram-Backcopy (Guo et al. 2024, "Active-Dormant Attention Heads"): unlimited fresh sequences.

Why: an attention sink forms only after a model has seen enough *unique* data (Gu et al.,
ICLR 2025); a small corpus seen a hundred times never shows one. This task is drawn fresh
every step, and a 3-layer model forms a sink on it in minutes.

The task: character bigram statistics from a text (the shipped KJV or a user corpus); the
`triggers` most frequent characters are triggers. Position 0 is BOS. After a trigger the next
token copies the token before the trigger (the "backcopy"); everywhere else the next token
follows the bigram. A trigger at position 1 has only BOS before it, so position 2 follows the
bigram. Token ids: 0 is BOS, 1..V are the characters in order of their code point.

Sequences are a pure function of a torch.Generator, so a training step's batch is a pure
function of (seed, step): drawn for all ranks at once and sliced (see `pipeline.train.engine`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.data.text import documents
from pipeline.io import DataError, read_json, write_json

BOS_ID = 0


def bigram_stats(corpus: str, text_column: str, sample_mb: float, out: str | Path,
                 doc_chars: int) -> dict[str, Any]:
    """Count character bigrams over a bounded prefix of the corpus and write them as JSON."""
    budget = int(sample_mb * 2**20)
    used = 0
    text_parts: list[str] = []
    for _, doc in documents(corpus, text_column, doc_chars):
        text_parts.append(doc)
        used += len(doc)
        if used >= budget:
            break
    text = "\n".join(text_parts)[:budget]
    if len(text) < 2:
        raise DataError(f"bigram source {corpus!r} holds fewer than two characters")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    counts = np.zeros((len(chars), len(chars)), dtype=np.int64)
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    stats = {"corpus": corpus, "chars": chars, "counts": counts.tolist(), "characters": len(text)}
    write_json(stats, out)
    return stats


class BigramBackcopy:
    """Draws Bigram-Backcopy sequences from bigram counts (see the module docstring)."""

    def __init__(self, stats: dict[str, Any] | str | Path, triggers: int) -> None:
        if not isinstance(stats, dict):
            stats = read_json(stats)
        counts = torch.as_tensor(np.asarray(stats["counts"], dtype=np.float64))
        self.chars: list[str] = list(stats["chars"])
        n = len(self.chars)
        if not 1 <= triggers < n:
            raise DataError(f"triggers={triggers} must be between 1 and the {n - 1} characters of the bigram source minus one")
        unigram = counts.sum(1) + counts.sum(0)
        # a character never followed by anything (the text's last one) falls back to the unigram
        rows = counts.sum(1, keepdim=True)
        trans = torch.where(rows > 0, counts / rows.clamp(min=1), unigram / unigram.sum())
        self.vocab_size = n + 1  # BOS first
        self.transition = torch.zeros(self.vocab_size, self.vocab_size, dtype=torch.float64)
        self.transition[1:, 1:] = trans
        self.transition[BOS_ID, 1:] = unigram / unigram.sum()  # the first character follows the unigram
        order = torch.argsort(unigram, descending=True, stable=True)[:triggers]
        self.triggers = torch.sort(order + 1).values  # token ids
        self.is_trigger = torch.zeros(self.vocab_size, dtype=torch.bool)
        self.is_trigger[self.triggers] = True

    bos = BOS_ID

    def draw(self, gen: torch.Generator, batch: int, length: int) -> torch.Tensor:
        """[batch, length] token ids, BOS at position 0."""
        out = torch.empty(batch, length, dtype=torch.long)
        out[:, 0] = BOS_ID
        for t in range(1, length):
            nxt = torch.multinomial(self.transition[out[:, t - 1]], 1, generator=gen).squeeze(1)
            if t >= 3:
                copy = self.is_trigger[out[:, t - 1]]
                nxt = torch.where(copy, out[:, t - 2], nxt)
            out[:, t] = nxt
        return out

    def sample(self, gen: torch.Generator, batch: int, seq_len: int) -> torch.Tensor:
        """Fresh windows [batch, seq_len + 1] (inputs and next-token targets): `TokenShards.sample`'s contract."""
        return self.draw(gen, batch, seq_len + 1)

    def fixed(self, n: int, seq_len: int, seed: int = 0) -> torch.Tensor:
        """n evaluation windows [n, seq_len + 1], the same for every model: `TokenShards.fixed`'s contract."""
        return self.draw(eval_generator(seed), n, seq_len + 1)

    def copy_targets(self, seqs: torch.Tensor) -> torch.Tensor:
        """[B, T] bool: positions whose token is set by the backcopy rule (input at t-1 a trigger, t >= 3)."""
        mask = torch.zeros_like(seqs, dtype=torch.bool)
        mask[:, 3:] = self.is_trigger[seqs[:, 2:-1]]
        return mask


def eval_generator(seed: int) -> torch.Generator:
    """The fixed generator of evaluation sequences: the same for every model of a study."""
    g = torch.Generator(device="cpu")
    g.manual_seed(2**31 - 1 - seed)
    return g
