"""Every hivemind job's spec, and the population it samples, built from the validated config in this one place.

A spec holds what changes a job's numbers and nothing else (threads, tracking and the interpreter reach
the job through `pipeline.job`). A population entry is read as the schema leaves it: its optional keys
(enabled, requires, chat_template, prompts, max_new_tokens, ...) carry their JSON-Schema defaults.
The checks that span several keys run here at DAG build, naming the model, before any job starts.
No torch or transformers here: the DAG build imports this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from pipeline.job import AnalyseSpec  # the same for every study: its block and the scale label
from pipeline.studies.hivemind.population import check_paths, decodings
from pipeline.studies.hivemind.prompts import prompt_files


@dataclass(frozen=True)
class PromptsSpec:
    """The study's prompt set: its sources and their seeded subsets."""

    prompts: dict[str, Any]
    seed: int


@dataclass(frozen=True)
class GenerateSpec:
    """One model of the population, sampled at each of its decoding settings."""

    model: dict[str, Any]  # the population entry, schema defaults filled
    decoding: dict[str, dict[str, Any]]  # the settings it samples with, by name (others change none of its numbers)
    n_samples: int
    max_new_tokens: int  # the entry's own budget, else generation.max_new_tokens
    batch_size: int
    seed: int
    device: str


@dataclass(frozen=True)
class EmbedSpec:
    """Sentence embeddings of every non-empty response."""

    embedding: dict[str, Any]
    device: str


@dataclass(frozen=True)
class FiguresSpec:
    threshold: float
    n_prompts: int


def population(config: Mapping[str, Any], enabled: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{name: entry} of the enabled models (an entry with `requires: <study>` only when that study runs).

    When the study runs, an empty population, a decoding setting a model names but nobody defines, and
    a missing local model stop the DAG build by name; spine models come from other studies of this run,
    so Snakemake checks their files as inputs.
    """
    hv = config["studies"]["hivemind"]
    models = [m for m in hv["models"] if m["enabled"] and (m["requires"] is None or m["requires"] in enabled)]
    by_name = {m["name"]: m for m in models}
    if len(by_name) != len(models):
        raise ValueError("studies.hivemind.models: model names must be unique")
    if "hivemind" in enabled:
        if not by_name:
            raise ValueError("studies.hivemind.models: no model is enabled")
        check_paths([m for m in models if m["kind"] == "hf"])
        for m in models:
            decodings(hv["decoding"], m["decoding"], m["name"])
    return by_name


def prompt_inputs(config: Mapping[str, Any]) -> list[str]:
    """The Infinity-Chat files, as the prompts job's declared inputs (a path finding none stops the DAG build)."""
    ic = config["studies"]["hivemind"]["prompts"]["infinity_chat"]
    return [str(f) for f in prompt_files(ic["path"])] if ic["enabled"] and ic["path"] else []


def model_inputs(entry: Mapping[str, Any]) -> list[str]:
    """Files a spine model needs from the study that trains it, as declared inputs (none for local HF models)."""
    if entry["kind"] != "spine":
        return []
    files = [f"{entry['model_dir']}/model.json", f"{entry['model_dir']}/weights/final.pt", entry["tokenizer"]]
    return files + ([entry["prompts"]] if entry["prompts"] else [])


def prompts(config: Mapping[str, Any]) -> PromptsSpec:
    hv = config["studies"]["hivemind"]
    return PromptsSpec(prompts=hv["prompts"], seed=hv["seed"])


def generate(config: Mapping[str, Any], entry: Mapping[str, Any]) -> GenerateSpec:
    hv = config["studies"]["hivemind"]
    gen = hv["generation"]
    budget = gen["max_new_tokens"] if entry["max_new_tokens"] is None else entry["max_new_tokens"]
    return GenerateSpec(model=dict(entry), decoding={n: hv["decoding"][n] for n in entry["decoding"]},
                        n_samples=gen["n_samples"], max_new_tokens=budget, batch_size=gen["batch_size"],
                        seed=hv["seed"], device=config["train"]["device"])


def embed(config: Mapping[str, Any]) -> EmbedSpec:
    return EmbedSpec(embedding=config["studies"]["hivemind"]["embedding"], device=config["train"]["device"])


def analyse(config: Mapping[str, Any]) -> AnalyseSpec:
    hv = config["studies"]["hivemind"]
    cfg = {**hv["analysis"], "seed": hv["seed"], "rl_pairs": hv["rl_pairs"], "embedder": hv["embedding"]["model"]}
    return AnalyseSpec(cfg=cfg, scale=config["scale"])


def figures(config: Mapping[str, Any]) -> FiguresSpec:
    analysis = config["studies"]["hivemind"]["analysis"]
    return FiguresSpec(threshold=analysis["threshold"], n_prompts=analysis["projection_prompts"])
