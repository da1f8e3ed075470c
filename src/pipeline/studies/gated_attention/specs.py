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



def train_config(ga: Mapping[str, Any], regime: str) -> dict[str, Any]:
    """The `train` block of a regime: the stress regime overrides lr, clipping and steps."""
    t = dict(ga["train"])
    if regime == "stress":
        t.update(lr=ga["stress"]["lr"], grad_clip=ga["stress"]["grad_clip"], steps=ga["stress"]["steps"])
    return t


def run_dir(study_dir: str, wc: Mapping[str, str]) -> str:
    """Where a run's weights and metrics go (the rule's outputs live under it)."""
    return f"{study_dir}/runs/{wc['ffn']}_{wc['gate']}_{wc['regime']}_s{wc['seed']}"


def train(config: Mapping[str, Any], wc: Mapping[str, str], data_path: str, study_dir: str) -> TrainSpec:
    ga = config["studies"]["gated_attention"]
    return TrainSpec(
        data={**ga["data"], "path": data_path}, model=ga["model"], train=train_config(ga, wc["regime"]),
        gate=wc["gate"], ffn=wc["ffn"], seed=int(wc["seed"]), device=config["train"]["device"],
        out_dir=run_dir(study_dir, wc),
        verify_checksums=config["data"]["text"]["verify_checksums"],
        config_key="studies.gated_attention." + ("stress" if wc["regime"] == "stress" else "train"),
    )


def evaluate(config: Mapping[str, Any], wc: Mapping[str, str]) -> EvalSpec:
    ga = config["studies"]["gated_attention"]
    return EvalSpec(data=ga["data"], model=ga["model"], eval=ga["eval"], gate=wc["gate"], ffn=wc["ffn"],
                    device=config["train"]["device"])


def analyse(config: Mapping[str, Any]) -> AnalyseSpec:
    return AnalyseSpec(cfg=config["studies"]["gated_attention"], scale=config["scale"])
