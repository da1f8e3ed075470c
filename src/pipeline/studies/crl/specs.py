"""Every CRL job's spec, built from the validated config in this one place.

A spec holds what changes a job's numbers and nothing else (threads, tracking and the interpreter reach
the job through `pipeline.job`); every value comes from the config, whose defaults live in config.yaml
and the schema. The `studies.crl` block is parsed and checked by `config.py`; this module only picks
from it what each job depends on. The rule file calls the builders below; the jobs rebuild the
dataclass with `job.spec_from`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pipeline.job import AnalyseSpec  # the same for every study: its block and the scale label
from pipeline.studies.crl.config import RunConfig, networks as _networks, parse, parse_run, run_block


@dataclass(frozen=True)
class RunSpec:
    """One network (depth × width) and seed under the study's run block: all its final evaluation depends on."""

    run_cfg: dict[str, Any]  # config.run_block of studies.crl: only what one run depends on
    depth: int
    width: int
    seed: int
    device: str  # the top-level train.device (cpu | cuda | auto)

    def run_config(self) -> RunConfig:
        return parse_run(self.run_cfg)


@dataclass(frozen=True)
class TrainSpec(RunSpec):
    """One training run: a RunSpec and the directory its checkpoints and outputs go to."""

    out_dir: str


def block(config: Mapping[str, Any]) -> dict[str, Any]:
    return config["studies"]["crl"]


def networks(config: Mapping[str, Any]) -> dict[str, dict]:
    """Every network to train, by name (`d{depth}_w{width}`): the depth sweep and the widened controls."""
    return {n["name"]: n for n in _networks(parse(block(config)))}


def evaluate(config: Mapping[str, Any], wc: Mapping[str, str]) -> RunSpec:
    net = networks(config)[wc["crl_net"]]
    return RunSpec(run_cfg=run_block(block(config)), depth=net["depth"], width=net["width"], seed=int(wc["seed"]),
                   device=config["train"]["device"])


def train(config: Mapping[str, Any], wc: Mapping[str, str], out_dir: str) -> TrainSpec:
    return TrainSpec(**vars(evaluate(config, wc)), out_dir=out_dir)


def analyse(config: Mapping[str, Any]) -> AnalyseSpec:
    return AnalyseSpec(cfg=block(config), scale=config["scale"])
