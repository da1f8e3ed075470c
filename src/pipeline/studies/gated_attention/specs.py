"""Every gated-attention job's spec, built from the validated config in this one place.

A spec holds what changes a job's numbers and nothing else (threads, tracking and the interpreter reach
the job through `pipeline.job`); every value comes from the config, whose defaults live in config.yaml
and the schema. The rule file calls the builders below; the jobs rebuild the dataclass with `spec_from`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pipeline.job import AnalyseSpec  # the same for every study: its block and the scale label


@dataclass(frozen=True)
class TrainSpec:
    """One language model of the comparison: a gate × FFN × seed, in the main or the stress regime."""

    data: dict[str, Any]  # the study's data block plus `path` (bigram statistics or token manifest)
    model: dict[str, Any]
    train: dict[str, Any]
    gate: str
    ffn: str
    seed: int
    device: str
    out_dir: str
    verify_checksums: bool
    config_key: str  # the config block that sized this run (named in error messages)


@dataclass(frozen=True)
class EvalSpec:
    """Evaluation of one trained run (its files come from the rule's input and output)."""

    data: dict[str, Any]
    model: dict[str, Any]
    eval: dict[str, Any]
    gate: str
    ffn: str
    device: str



def regimes(ga: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(regime, ffn) of every gated/vanilla pair: the main comparison per FFN, then the enabled extra pairs.

    `stress` repeats a main pair at a high learning rate; `text` trains one on the tokenised corpus
    for the loss claim when the main task is synthetic (text forms no sink at CPU scale, and the
    sink task's loss is mostly irreducible entropy: nothing for the gate to gain).
    """
    out = [("main", ffn) for ffn in ga["ffns"]]
    out += [(r, ga[r]["ffn"]) for r in ("stress", "text") if ga[r]["enabled"]]
    return out


def train_config(ga: Mapping[str, Any], regime: str) -> dict[str, Any]:
    """The `train` block of a regime: stress overrides lr, clipping and steps; text its own keys."""
    t = dict(ga["train"])
    if regime == "stress":
        t.update(lr=ga["stress"]["lr"], grad_clip=ga["stress"]["grad_clip"], steps=ga["stress"]["steps"])
    elif regime == "text":
        t.update(ga["text"]["train"])
    return t


def model_config(ga: Mapping[str, Any], regime: str) -> dict[str, Any]:
    """The `model` block of a regime: the main model, with the text pair's keys replaced."""
    return {**ga["model"], **ga["text"]["model"]} if regime == "text" else dict(ga["model"])


def data_config(ga: Mapping[str, Any], regime: str) -> dict[str, Any]:
    """The `data` block of a regime: the text pair reads the tokenised corpus whatever the main task."""
    return {**ga["data"], "source": "text"} if regime == "text" else dict(ga["data"])


def data_file(ga: Mapping[str, Any], regime: str, text_dir: str) -> str:
    """What a regime's runs read: the corpus's bigram statistics (fresh synthetic sequences) or token manifest."""
    if data_config(ga, regime)["source"] == "bigram_backcopy":
        return "results/data/bigram/stats.json"
    return f"{text_dir}/manifest.json"


def run_dir(study_dir: str, wc: Mapping[str, str]) -> str:
    """Where a run's weights and metrics go (the rule's outputs live under it)."""
    return f"{study_dir}/runs/{wc['ffn']}_{wc['gate']}_{wc['regime']}_s{wc['seed']}"


def train(config: Mapping[str, Any], wc: Mapping[str, str], data_path: str, study_dir: str) -> TrainSpec:
    ga, regime = config["studies"]["gated_attention"], wc["regime"]
    return TrainSpec(
        data={**data_config(ga, regime), "path": data_path}, model=model_config(ga, regime),
        train=train_config(ga, regime), gate=wc["gate"], ffn=wc["ffn"], seed=int(wc["seed"]),
        device=config["train"]["device"], out_dir=run_dir(study_dir, wc),
        verify_checksums=config["data"]["text"]["verify_checksums"],
        config_key="studies.gated_attention." + {"main": "train", "stress": "stress", "text": "text.train"}[regime],
    )


def evaluate(config: Mapping[str, Any], wc: Mapping[str, str]) -> EvalSpec:
    ga, regime = config["studies"]["gated_attention"], wc["regime"]
    return EvalSpec(data=data_config(ga, regime), model=model_config(ga, regime), eval=ga["eval"], gate=wc["gate"],
                    ffn=wc["ffn"], device=config["train"]["device"])


def analyse(config: Mapping[str, Any]) -> AnalyseSpec:
    return AnalyseSpec(cfg=config["studies"]["gated_attention"], scale=config["scale"])
