"""Distillation data: a stronger teacher's sampled solutions to training prompts.

The paper contrasts RL with distilling a stronger model (DeepSeek-R1 traces into Qwen):
distillation brings in knowledge the base lacks. Here the teacher is a larger spine model
trained longer on the same task; it samples `samples_per_prompt` solutions for
`n_prompts` training problems (drawn with `seed`), optionally keeping only the ones the
checker accepts (rejection sampling, as R1's distillation data was filtered). The student is
then the base fine-tuned on these rows with `base.run_sft` (which trains on the column `target`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pipeline import runtime
from pipeline.io import write_parquet
from pipeline.studies.rlvr import models
from pipeline.studies.rlvr.evaluate import sample_problems
from pipeline.studies.rlvr.specs import TeacherDataSpec
from pipeline.studies.rlvr.task import Checker, read_split


def teacher_rows(teacher, codec, rows, *, n_prompts: int, samples_per_prompt: int, temperature: float,
                 top_p: float, max_new_tokens: int, seed: int, filter_correct: bool,
                 checker: Checker, batch_size: int) -> tuple[list[dict[str, Any]], float]:
    """(distillation rows with prompt/answer/target/correct, teacher accuracy on them)."""
    if n_prompts > len(rows):
        raise ValueError(f"distill.n_prompts={n_prompts} exceeds the {len(rows)} training problems")
    pick = np.random.default_rng([seed, 4]).choice(len(rows), size=n_prompts, replace=False)
    chosen = [rows[i] for i in sorted(pick.tolist())]
    samples = sample_problems(teacher, codec, chosen, n_samples=samples_per_prompt, temperature=temperature,
                              top_p=top_p, max_new_tokens=max_new_tokens, seed=seed, checker=checker,
                              batch_size=batch_size, desc="teacher solutions")
    by_pid = {r["pid"]: r for r in chosen}
    out = [{"pid": s["pid"], "prompt": by_pid[s["pid"]]["prompt"], "answer": by_pid[s["pid"]]["answer"],
            "klass": s["klass"], "target": s["text"], "correct": s["correct"]}
           for s in samples if s["correct"] or not filter_correct]
    accuracy = float(np.mean([s["correct"] for s in samples])) if samples else float("nan")
    if not out:
        raise RuntimeError("the teacher produced no accepted solution: train it longer or set "
                           "distill.filter_correct to false")
    return out, accuracy


def run_teacher_data(spec: TeacherDataSpec, train: str, tokenizer: str, out: str,
                     device: torch.device) -> dict[str, float]:
    """Rule rlvr_teacher_data's work: the teacher's solutions to training problems, written to `out`; the summary."""
    d = spec.distill
    teacher, mspec = models.load_trained(spec.teacher_dir)
    runtime.place(teacher, device)
    codec = models.codec(mspec, tokenizer)
    rows, acc = teacher_rows(teacher, codec, read_split(train), n_prompts=d["n_prompts"],
                             samples_per_prompt=d["samples_per_prompt"], temperature=d["temperature"],
                             top_p=d["top_p"], max_new_tokens=d["max_new_tokens"], seed=d["seed"],
                             filter_correct=d["filter_correct"], checker=Checker(spec.checker),
                             batch_size=spec.batch_size)
    write_parquet(rows, out)
    return {"teacher_accuracy": acc, "rows": float(len(rows))}
