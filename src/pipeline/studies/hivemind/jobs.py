"""One entry point per Snakemake rule of the study: set threads, open the MLflow mirror, call
the library. The scripts in workflow/scripts/hivemind only unpack the snakemake object."""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Mapping, Sequence

if not sys.stderr.isatty():  # transformers' GGUF loader draws a raw tqdm bar into the job log
    os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pipeline.io import read_parquet, write_parquet  # noqa: E402
from pipeline.runtime import setup  # noqa: E402
from pipeline.tracking import Tracker  # noqa: E402

STUDY = "hivemind"


def prompts_job(out: str, prompts_cfg: Mapping[str, Any], seed: int) -> None:
    from pipeline.studies.hivemind.prompts import build_prompt_set

    write_parquet(build_prompt_set(prompts_cfg, seed), out)


def generate_job(prompts: str, out: str, entry: Mapping[str, Any], decoding: Mapping[str, Any],
                 generation: Mapping[str, Any], seed: int, *, threads: int, device: str,
                 tracking: Mapping[str, Any]) -> None:
    from pipeline.studies.hivemind.generate import run_generation

    dev = setup(threads, device, seed).type  # 'cuda' without a GPU fails here, clearly
    params = {"entry": dict(entry), "decoding": dict(decoding), "generation": dict(generation), "seed": seed}
    with Tracker(STUDY, "generate", wildcards={"model": entry["name"]}, params=params,
                 uri=tracking["uri"], enabled=tracking["enabled"]) as tr:
        t0 = time.perf_counter()
        table = run_generation(entry, decoding, read_parquet(prompts), out,
                               n_samples=generation["n_samples"], max_new_tokens=generation["max_new_tokens"],
                               batch_size=generation["batch_size"], seed=seed, device=dev)
        seconds = time.perf_counter() - t0
        tokens = sum(table.column("n_tokens").to_pylist())
        empty = sum(table.column("empty").to_pylist())
        print(f"{entry['name']}: {table.num_rows} generations, {empty} empty, {tokens} tokens "
              f"in {seconds:.1f} s (incl. loading)", flush=True)
        tr.log_metrics({"generations": table.num_rows, "empty": empty, "tokens": tokens,
                        "seconds_with_load": seconds}, step=0)
        tr.log_artifact(out)


def embed_job(generations: Sequence[str], out: str, embedding: Mapping[str, Any], *, threads: int,
              device: str, tracking: Mapping[str, Any]) -> None:
    from pipeline.studies.hivemind.embed import embed_generations

    dev = setup(threads, device, 0).type
    with Tracker(STUDY, "embed", params=dict(embedding), uri=tracking["uri"], enabled=tracking["enabled"]) as tr:
        t0 = time.perf_counter()
        table = embed_generations(generations, out, model=embedding["model"], backend=embedding["backend"],
                                  batch_size=embedding["batch_size"], device=dev)
        tr.log_metrics({"responses": table.num_rows, "seconds": time.perf_counter() - t0}, step=0)


def analyse_job(embeddings: str, generations: Sequence[str], out: Mapping[str, str],
                cfg: Mapping[str, Any], scale: str, tracking: Mapping[str, Any]) -> None:
    from pipeline.studies.hivemind.analysis import run_analysis

    with Tracker(STUDY, "analyse", params=dict(cfg), uri=tracking["uri"], enabled=tracking["enabled"]) as tr:
        claims = run_analysis(embeddings, generations, out, cfg, scale)
        for i, c in enumerate(claims):
            tr.log_metrics({f"claim{i}.value": c.value, f"claim{i}.effect": c.effect}, step=0)
        tr.log_artifact(out["claims"])
        tr.log_artifact(out["summary"])


def figures_job(intra: str, random_pairs: str, summary: str, embeddings: str, generations: Sequence[str],
                out: Mapping[str, str], threshold: float, n_prompts: int) -> None:
    from pipeline.studies.hivemind.figures import make_figures

    make_figures(intra, random_pairs, summary, embeddings, generations, dict(out), threshold, n_prompts)
