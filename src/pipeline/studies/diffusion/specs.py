"""Every diffusion job's spec, built from the validated config in this one place.

A spec holds what changes a job's numbers and nothing else (threads, tracking and the interpreter reach
the job through `pipeline.job`); every value comes from the config, whose defaults live in config.yaml
and the schema. The rule file calls the builders below; the jobs rebuild the dataclass with `spec_from`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pipeline.io import missing
from pipeline.job import AnalyseSpec  # the same for every study: its block and the scale label
from pipeline.studies.diffusion import plan

DIR = "results/diffusion"


# Where each job's files live (the rule file and the specs share them).
def run_dir(n, seed) -> str:
    return f"{DIR}/runs/n{n}/s{seed}"


def weights_dir(n, seed) -> str:
    """The exported weights every evaluation of a run reads (the run's own copies stay in weights/)."""
    return f"{run_dir(n, seed)}/exports"


def subset_path(n, seed) -> str:
    return f"{DIR}/data/subsets/n{n}_s{seed}.parquet"


def eval_path(n, seed, step) -> str:
    return f"{DIR}/eval/n{n}/s{seed}/step{int(step):08d}.parquet"


def samples_path(n, seed, step) -> str:
    return f"{DIR}/samples/n{n}/s{seed}/step{int(step):08d}.parquet"


def image_inputs(config: Mapping[str, Any]) -> list[str]:
    """An image folder is a declared input (adding or removing images re-runs the data job); a folder
    that is not there stops the DAG build, before any job of a long run has started."""
    d = config["studies"]["diffusion"]["data"]
    if d["source"] != "folder":
        return []
    if not d["path"] or not Path(d["path"]).expanduser().is_dir():
        raise missing("studies.diffusion.data.path", "image folder", d["path"])
    return [d["path"]]

KEY = "studies.diffusion"


@dataclass(frozen=True)
class DataSpec:
    """The image table: every image of the source once, with the held-out split."""

    data: dict[str, Any]


@dataclass(frozen=True)
class SubsetSpec:
    """The training subset of size n for one seed."""

    n: int
    seed: int
    mode: str  # data.subsets: nested | disjoint
    data_seed: int


@dataclass(frozen=True)
class FeaturesSpec:
    """The classifier whose features define the Fréchet distance."""

    features: dict[str, Any]


@dataclass(frozen=True)
class TrainSpec:
    """One denoiser trained on one subset (n, seed); its files come from the rule's input and output."""

    subset: str
    out_dir: str  # the run's own directory: checkpoints and the engine's exports (outside the declared outputs)
    weights_dir: str  # the declared output the evaluations read: the exports of this run, published at its end
    n: int
    seed: int
    model: dict[str, Any]
    ddpm: dict[str, Any]
    train: dict[str, Any]
    checkpoints: dict[str, Any]
    device: str


@dataclass(frozen=True)
class EvalSpec:
    """Evaluation of one exported checkpoint (n, seed, step)."""

    model: dict[str, Any]
    ddpm: dict[str, Any]
    sampling: dict[str, Any]
    memorization: dict[str, Any]
    loss_points: int
    eval_seed: int
    n: int
    seed: int
    step: int
    device: str


@dataclass(frozen=True)
class RandomFeaturesSpec:
    """The analytic random-features experiment."""

    random_features: dict[str, Any]


@dataclass(frozen=True)
class FiguresSpec:
    """Every figure; the sample grid shows the first and the last exported step of `grid_n`."""

    cfg: dict[str, Any]
    early_step: int
    late_step: int


def check(df: Mapping[str, Any]) -> None:
    """Cross-field checks the schema cannot express; raise naming the keys."""
    if grid_n(df) not in df["sizes"]:
        raise ValueError(f"{KEY}.figures.grid_n={grid_n(df)} is not one of {KEY}.sizes {df['sizes']}")
    if len(set(df["sizes"])) != len(df["sizes"]) or len(set(df["seeds"])) != len(df["seeds"]):
        raise ValueError(f"{KEY}.sizes and {KEY}.seeds must not repeat values")


def grid_n(df: Mapping[str, Any]) -> int:
    """The n whose samples the figures show (figures.grid_n; null: the smallest n)."""
    return df["figures"]["grid_n"] or min(df["sizes"])


def grid_steps(df: Mapping[str, Any]) -> tuple[int, int]:
    """The first and the last exported step of grid_n: the sample grid's two columns."""
    steps = plan.export_steps(grid_n(df), df)
    return steps[0], steps[-1]


def weights_file(weights_dir: str | Path, step: int) -> Path:
    """The exported (EMA) weights of `step` inside a run's declared weights directory."""
    return Path(weights_dir) / f"step{int(step):08d}.pt"


def data(config: Mapping[str, Any]) -> DataSpec:
    return DataSpec(data=config["studies"]["diffusion"]["data"])


def subset(config: Mapping[str, Any], wc: Mapping[str, str]) -> SubsetSpec:
    d = config["studies"]["diffusion"]["data"]
    return SubsetSpec(n=int(wc["df_n"]), seed=int(wc["seed"]), mode=d["subsets"], data_seed=d["seed"])


def features(config: Mapping[str, Any]) -> FeaturesSpec:
    return FeaturesSpec(features=config["studies"]["diffusion"]["features"])


def train(config: Mapping[str, Any], wc: Mapping[str, str], subset_path: str, out_dir: str, weights_dir: str) -> TrainSpec:
    df = config["studies"]["diffusion"]
    return TrainSpec(subset=subset_path, out_dir=out_dir, weights_dir=weights_dir, n=int(wc["df_n"]), seed=int(wc["seed"]),
                     model=df["model"], ddpm=df["ddpm"], train=df["train"], checkpoints=df["checkpoints"],
                     device=config["train"]["device"])


def evaluate(config: Mapping[str, Any], wc: Mapping[str, str]) -> EvalSpec:
    df = config["studies"]["diffusion"]
    return EvalSpec(model=df["model"], ddpm=df["ddpm"], sampling=df["sampling"], memorization=df["memorization"],
                    loss_points=df["loss_points"], eval_seed=df["eval_seed"], n=int(wc["df_n"]), seed=int(wc["seed"]),
                    step=int(wc["df_step"]), device=config["train"]["device"])


def random_features(config: Mapping[str, Any]) -> RandomFeaturesSpec:
    return RandomFeaturesSpec(random_features=config["studies"]["diffusion"]["random_features"])


def analyse(config: Mapping[str, Any]) -> AnalyseSpec:
    return AnalyseSpec(cfg=config["studies"]["diffusion"], scale=config["scale"])


def figures(config: Mapping[str, Any]) -> FiguresSpec:
    df = config["studies"]["diffusion"]
    early, late = grid_steps(df)
    return FiguresSpec(cfg=df, early_step=early, late_step=late)
