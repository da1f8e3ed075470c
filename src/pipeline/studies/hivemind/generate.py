"""Sample many responses per prompt from one model at each of its decoding settings.

Every generation is a row: prompt, model, sampling settings, the seed of its batch, the
response and whether it ended with EOS. Prompts × samples are packed into batches of
`batch_size`; each batch's seed is a pure function of (seed, model, decoding, batch index),
so the same config gives the same table. Empty responses are kept with `empty = true` so
they can be counted; the analysis leaves them out (they would inflate similarity).
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import torch

from pipeline.io import write_parquet
from pipeline.progress import progress
from pipeline.studies.hivemind import models as M
from pipeline.studies.hivemind import population as P
from pipeline.studies.hivemind.prompts import COLUMNS, load_file_prompts
from pipeline.studies.hivemind.specs import GenerateSpec

GENERATION_SCHEMA = pa.schema([
    ("model", pa.string()), ("generator", pa.string()), ("decoding", pa.string()),
    ("temperature", pa.float64()), ("top_p", pa.float64()), ("min_p", pa.float64()),
    ("top_k", pa.int64()), ("prompt_id", pa.string()), ("source", pa.string()),
    ("category", pa.string()), ("prompt", pa.string()), ("sample", pa.int64()),
    ("seed", pa.int64()), ("response", pa.string()), ("n_tokens", pa.int64()),
    ("finished", pa.bool_()), ("empty", pa.bool_()),
])


def generator_name(model: str, decoding: str) -> str:
    """The population member: one model at one decoding setting."""
    return f"{model}@{decoding}"


def batch_seed(seed: int, model: str, decoding: str, batch: int) -> int:
    """A 31-bit seed for one batch, independent of every other batch's."""
    words = [seed, zlib.crc32(model.encode()), zlib.crc32(decoding.encode()), batch]
    return int(np.random.SeedSequence(words).generate_state(1)[0] & 0x7FFFFFFF)


def model_prompts(entry: Mapping[str, Any], study_prompts: pa.Table, seed: int) -> pa.Table:
    """The study's prompt set, or the entry's own task prompts (`prompts: path`) for task models."""
    if not entry["prompts"]:
        return study_prompts
    table = load_file_prompts(entry["prompts"], column=entry["prompt_column"],
                              source=f"task:{Path(entry['prompts']).stem}", limit=entry["prompt_limit"], seed=seed)
    return table.set_column(2, "category", pa.array(["task"] * table.num_rows))


def sample_responses(lm: P.LanguageModel, decodings: Sequence[P.Decoding], prompts: pa.Table, *,
                     n_samples: int, max_new_tokens: int, batch_size: int, seed: int) -> pa.Table:
    """n_samples responses to every prompt at every decoding, as a GENERATION_SCHEMA table."""
    if n_samples < 1 or batch_size < 1 or max_new_tokens < 1:
        raise ValueError("n_samples, batch_size and max_new_tokens must be ≥ 1")
    prows = prompts.select(list(COLUMNS)).to_pylist()
    jobs = [(p, s) for p in prows for s in range(n_samples)]
    batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
    rows = []
    bar = progress(total=len(batches) * len(decodings), desc=f"generate {lm.name}", unit="batch")
    for dec in decodings:
        for b, batch in enumerate(batches):
            bseed = batch_seed(seed, lm.name, dec.name, b)
            outs = lm.complete([p["prompt"] for p, _ in batch], dec, max_new_tokens=max_new_tokens,
                               seed=bseed)
            for (p, s), c in zip(batch, outs):
                rows.append({"model": lm.name, "generator": generator_name(lm.name, dec.name),
                             **dec.as_dict(), **p, "sample": s, "seed": bseed,
                             "response": c.text, "n_tokens": c.n_tokens, "finished": c.finished,
                             "empty": not c.text.strip()})
            bar.update(1)
    bar.close()
    return pa.Table.from_pylist(rows, schema=GENERATION_SCHEMA)


def run_generation(spec: GenerateSpec, study_prompts: pa.Table, out: str | Path, device: str | torch.device) -> pa.Table:
    """Load one population entry (failing by name before any generation), sample, write Parquet."""
    entry = spec.model
    decs = P.decodings(spec.decoding, entry["decoding"], entry["name"])
    prompts = model_prompts(entry, study_prompts, spec.seed)
    lm = M.load(entry, device=device)
    table = sample_responses(lm, decs, prompts, n_samples=spec.n_samples, max_new_tokens=spec.max_new_tokens,
                             batch_size=spec.batch_size, seed=spec.seed)
    write_parquet(table, out)
    return table
