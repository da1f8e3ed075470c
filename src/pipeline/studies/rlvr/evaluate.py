"""Held-out evaluation: n samples per problem, checked, counted, and scored by the base.

Every model (base, teacher, RL runs, distilled students) is sampled with the same decoding
settings and seed on the same held-out problems. Two Parquet files per model:
`counts.parquet` (one row per problem: n, c — enough to recompute any pass@k) and
`samples.parquet` (every completion, its correctness, and its log-likelihood under the
base model, for the perplexity comparison).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from pipeline import runtime
from pipeline.io import write_parquet
from pipeline.sampling import completion_loglik, generate
from pipeline.studies.rlvr import models
from pipeline.studies.rlvr.specs import EvalSpec
from pipeline.studies.rlvr.task import Checker, read_split


def sample_problems(model, codec, rows: Sequence[Mapping[str, str]], *, n_samples: int,
                    temperature: float, top_p: float, max_new_tokens: int, seed: int,
                    checker: Checker, batch_size: int, desc: str = "") -> list[dict[str, Any]]:
    """`n_samples` completions for every row, checked: one dict per completion."""
    prompt_ids = [codec.prompt_ids(r["prompt"]) for r in rows]
    flat = [p for p in prompt_ids for _ in range(n_samples)]
    comps = generate(model, flat, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                     seed=seed, eos_id=codec.stop_ids, pad_id=codec.pad_id, batch_size=batch_size, desc=desc)
    out = []
    for j, toks in enumerate(comps):
        r = rows[j // n_samples]
        text = codec.decode(toks)
        out.append({"pid": r["pid"], "klass": r["klass"], "sample": j % n_samples, "text": text,
                    "tokens": toks, "correct": bool(checker.check(text, r["answer"]))})
    return out


def count_correct(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-problem n and c, in first-seen problem order."""
    table: dict[str, dict[str, Any]] = {}
    for s in samples:
        row = table.setdefault(s["pid"], {"pid": s["pid"], "klass": s["klass"], "n": 0, "c": 0})
        row["n"] += 1
        row["c"] += int(s["correct"])
    return list(table.values())


def score_with_base(base, base_codec, rows, samples, batch_size: int = 1024, codec=None) -> None:
    """Add `base_logp` and `n_tokens` (the base model's log-likelihood of each completion).

    With `codec` (the sampled model's, when its tokenizer is not the base's: a teacher of
    another family), each completion is scored on its text, re-tokenised under the base and
    closed by the base's end id where the sample ended: the ids of another vocabulary would
    index the wrong rows (or none) of the base's.
    """
    prompt_of = {r["pid"]: base_codec.prompt_ids(r["prompt"]) for r in rows}
    if codec is None:
        comps = [s["tokens"] for s in samples]
    else:
        ends = [bool(s["tokens"]) and s["tokens"][-1] in codec.stop_ids for s in samples]
        comps = [base_codec.target_ids(s["text"])[: None if end else -1] for s, end in zip(samples, ends)]
    sums, counts = completion_loglik(base, [prompt_of[s["pid"]] for s in samples], comps,
                                     pad_id=base_codec.pad_id, batch_size=batch_size, desc="base log-likelihood")
    for s, lp, n in zip(samples, sums, counts):
        s["base_logp"], s["n_tokens"] = float(lp), int(n)


def run_eval(spec: EvalSpec, heldout: str, tokenizer: str, counts_out: str, samples_out: str,
             device: torch.device, name: str = "") -> dict[str, float]:
    """Rule rlvr_evaluate's work: sample, check and score the model of `spec`; write both tables; the summary."""
    ev = spec.eval
    rows = read_split(heldout)
    model, mspec = models.load_trained(spec.model_dir)
    runtime.place(model, device)
    codec = models.codec(mspec, tokenizer)
    samples = sample_problems(model, codec, rows, n_samples=ev["n_samples"], temperature=ev["temperature"],
                              top_p=ev["top_p"], max_new_tokens=ev["max_new_tokens"], seed=ev["seed"],
                              checker=Checker(spec.checker), batch_size=ev["batch_size"], desc=f"sampling {name}")
    base, bspec = (model, mspec) if spec.base_dir == spec.model_dir else models.load_trained(spec.base_dir)
    same = models.same_tokenizer(mspec, bspec)
    score_with_base(runtime.place(base, device), codec if same else models.codec(bspec, tokenizer), rows, samples,
                    batch_size=ev["batch_size"], codec=None if same else codec)
    counts = count_correct(samples)
    c = np.array([r["c"] for r in counts])
    logp = np.array([s["base_logp"] for s in samples])
    ntok = np.array([s["n_tokens"] for s in samples])
    summary = {"pass1": float(c.sum() / (len(counts) * ev["n_samples"])),
               "coverage": float((c > 0).mean()),
               "base_nll_per_token": float(-logp.sum() / max(ntok.sum(), 1))}
    write_parquet(samples, samples_out)
    write_parquet(counts, counts_out)
    return summary
