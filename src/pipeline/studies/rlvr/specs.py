"""Every RLVR job's spec, and the study's cross-field config checks, built from the validated config in one place.

A spec holds what changes a job's numbers (and the paths it reads and writes); threads, tracking and the
interpreter reach the job through `pipeline.job`, and the rule and wildcards name its run there. Every value
comes from the config, whose defaults live in config.yaml and the schema. The rule file (rlvr.smk) calls the
builders below and `check` once; the jobs rebuild the dataclass with `pipeline.job.spec_from`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pipeline.models import store
from pipeline.studies.rlvr.models import check_teacher
from pipeline.studies.rlvr.task import checker_mode, length_errors

DIR = "results/rlvr"
DATA = {k: f"{DIR}/data/{k}" for k in ("train.parquet", "heldout.parquet", "tokenizer.json")}
TEACHER_DATA = f"{DIR}/distill/teacher_solutions.parquet"


def model_dir(name: str) -> str:
    """Where the model `name` (base, teacher, distill-s0, grpo-s1, ...) is saved (pipeline.models.directory)."""
    return f"{DIR}/models/{name}"


def model_files(name: str) -> dict[str, str]:
    return {"spec": f"{model_dir(name)}/model.json", "weights": f"{model_dir(name)}/weights/final.pt"}


@dataclass(frozen=True)
class DataSpec:
    """The task's training and held-out problems and its character table (files: the rule's output)."""

    task: dict[str, Any]


@dataclass(frozen=True)
class RunSpec:
    """What every training job (SFT or RL) shares: where it writes, what it starts from, how the engine runs."""

    out_dir: str
    model: dict[str, Any] | None  # a fresh network's `model` config block (base, teacher), or None ...
    init: str | None  # ... and a trained model directory to start from (students, RL runs)
    data: str  # Parquet of training rows (prompt, answer, target)
    tokenizer: str
    train: dict[str, Any]  # the block's engine keys (and its parallelism keys, which change nothing)
    seed: int
    device: str
    config_key: str  # the config block that sized this run (named in error messages)


@dataclass(frozen=True)
class SFTSpec(RunSpec):
    """Supervised fine-tuning on the `target` column: the base, the teacher, a distilled student."""


@dataclass(frozen=True)
class RLSpec(RunSpec):
    """GRPO/RLOO from the base with checker rewards."""

    checker: str
    rl: dict[str, Any]  # algorithm, group_size, temperature, top_p, kl_coef, max_new_tokens


@dataclass(frozen=True)
class TeacherDataSpec:
    """The teacher's sampled solutions to training prompts (its files: the rule's input and output)."""

    teacher_dir: str
    distill: dict[str, Any]  # n_prompts, samples_per_prompt, temperature, top_p, filter_correct, seed, max_new_tokens
    batch_size: int
    checker: str
    device: str


@dataclass(frozen=True)
class EvalSpec:
    """n samples per held-out problem from one model, scored by the base (files: the rule's input and output)."""

    model_dir: str
    base_dir: str
    eval: dict[str, Any]  # n_samples, temperature, top_p, seed, max_new_tokens, batch_size
    checker: str
    device: str


@dataclass(frozen=True)
class AnalyseSpec:
    """pass@k, coverage, perplexity and claims over every evaluated model."""

    models: list[str]
    k_max: int
    algorithms: list[str]
    subset_threshold: float
    scale: str


@dataclass(frozen=True)
class FiguresSpec:
    k_max: int


def _rl(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config["studies"]["rlvr"]


def model_names(config: Mapping[str, Any]) -> list[str]:
    """Every model the study evaluates, in the order its tables list them."""
    c = _rl(config)
    return (["base", "teacher"] + [f"distill-s{s}" for s in c["distill"]["seeds"]]
            + [f"{a}-s{s}" for a in c["rl"]["algorithms"] for s in c["rl"]["seeds"]])


def checker(config: Mapping[str, Any]) -> str:
    return checker_mode(_rl(config)["task"])


def task_files(config: Mapping[str, Any]) -> list[str]:
    """The user's task files, declared as inputs: editing one re-runs everything downstream."""
    t = config["studies"]["rlvr"]["task"]
    return [p for p in (t["path"], t["heldout_path"]) if p] if t["source"] == "file" else []


def data(config: Mapping[str, Any]) -> DataSpec:
    return DataSpec(task=_rl(config)["task"])


def _run(config: Mapping[str, Any], name: str, block: str, seed: int | str, *, model=None, init=None,
         data_path: str = DATA["train.parquet"]) -> dict[str, Any]:
    return dict(out_dir=model_dir(name), model=model, init=init, data=data_path, tokenizer=DATA["tokenizer.json"],
                train=_rl(config)[block]["train"], seed=int(seed), device=config["train"]["device"],
                config_key=f"studies.rlvr.{block}.train")


def base(config: Mapping[str, Any]) -> SFTSpec:
    c = _rl(config)
    return SFTSpec(**_run(config, "base", "base", c["base"]["seed"], model=c["model"]))


def teacher(config: Mapping[str, Any]) -> SFTSpec:
    c = _rl(config)
    return SFTSpec(**_run(config, "teacher", "teacher", c["teacher"]["seed"], model=c["teacher"]["model"]))


def distill(config: Mapping[str, Any], wc: Mapping[str, str]) -> SFTSpec:
    """A student: the base fine-tuned on the teacher's solutions."""
    return SFTSpec(**_run(config, f"distill-s{wc['seed']}", "distill", wc["seed"], init=model_dir("base"),
                          data_path=TEACHER_DATA))


def rl(config: Mapping[str, Any], wc: Mapping[str, str]) -> RLSpec:
    c = _rl(config)
    settings = {k: c["rl"][k] for k in ("group_size", "temperature", "top_p", "kl_coef")}
    settings.update(algorithm=wc["rlvr_algo"], max_new_tokens=c["sampling"]["max_new_tokens"])
    return RLSpec(**_run(config, f"{wc['rlvr_algo']}-s{wc['seed']}", "rl", wc["seed"], init=model_dir("base")),
                  checker=checker(config), rl=settings)


def teacher_data(config: Mapping[str, Any]) -> TeacherDataSpec:
    c = _rl(config)
    keys = ("n_prompts", "samples_per_prompt", "temperature", "top_p", "filter_correct")
    return TeacherDataSpec(
        teacher_dir=model_dir("teacher"),
        distill={**{k: c["distill"][k] for k in keys}, "seed": c["distill"]["data_seed"],
                 "max_new_tokens": c["sampling"]["max_new_tokens"]},
        batch_size=c["sampling"]["batch_size"], checker=checker(config), device=config["train"]["device"])


def evaluate(config: Mapping[str, Any], wc: Mapping[str, str]) -> EvalSpec:
    c = _rl(config)
    ev = {k: c["eval"][k] for k in ("n_samples", "temperature", "top_p", "seed")}
    ev.update(max_new_tokens=c["sampling"]["max_new_tokens"], batch_size=c["sampling"]["batch_size"])
    return EvalSpec(model_dir=model_dir(wc["rlvr_model"]), base_dir=model_dir("base"), eval=ev,
                    checker=checker(config), device=config["train"]["device"])


def analyse(config: Mapping[str, Any]) -> AnalyseSpec:
    c = _rl(config)
    return AnalyseSpec(models=model_names(config), k_max=c["eval"]["k_max"], algorithms=c["rl"]["algorithms"],
                       subset_threshold=c["analysis"]["subset_threshold"], scale=config["scale"])


def figures(config: Mapping[str, Any]) -> FiguresSpec:
    return FiguresSpec(k_max=_rl(config)["eval"]["k_max"])


def check(config: Mapping[str, Any]) -> None:
    """The study's cross-field checks (what one key's schema cannot say), at DAG build: the first failure
    stops it, naming the keys. A local HF model must exist, with a chat template where one is asked for."""
    c = _rl(config)
    ev, task = c["eval"], c["task"]
    if ev["n_samples"] < 2 * ev["k_max"]:
        raise ValueError(f"studies.rlvr.eval.n_samples={ev['n_samples']} must be at least "
                         f"2·studies.rlvr.eval.k_max={2 * ev['k_max']}")
    if task["source"] == "generated" and c["distill"]["n_prompts"] > task["n_train"]:
        raise ValueError(f"studies.rlvr.distill.n_prompts={c['distill']['n_prompts']} exceeds "
                         f"studies.rlvr.task.n_train={task['n_train']}")
    if task["source"] == "file" and not task["path"]:
        raise ValueError("studies.rlvr.task.source is 'file' but studies.rlvr.task.path is null")
    check_teacher(c["model"], c["teacher"]["model"])
    for key, m in (("studies.rlvr.model", c["model"]), ("studies.rlvr.teacher.model", c["teacher"]["model"])):
        if m["kind"] == "hf":
            store.resolve(m["path"])  # a missing model stops the DAG build, by path
            if m["chat_template"]:
                store.check_chat_template(m["path"], f"{key}.chat_template")
    errors = length_errors(c)
    if errors:
        raise ValueError("; ".join(errors))
