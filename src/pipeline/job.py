"""The one set-up every job of every study runs first: log, threads, device, seed, its MLflow run.

A job is told three things, each by one channel, so that only what changes a result re-runs it:
- what to compute: its typed spec (a rule's params; a change re-runs the job);
- who it is: the rule and wildcards exactly as Snakemake names them, from the `snakemake` object
  in a `script:` job, or from PIPELINE_JOB in a job started by `pipeline.launch`;
- how to run: threads and tracking, from PIPELINE_RUNTIME, which the workflow sets (common.smk).
  A changed tracking server or thread count therefore re-runs nothing.

    spec = job.spec_from(EvalSpec, snakemake.params.spec)  # the study's typed spec, strictly rebuilt
    with job.start(STUDY, snakemake=snakemake, device=spec.device, seed=0, params=spec) as j:
        from pipeline.studies... import evaluate  # heavy imports inside: their output reaches the job's log
        evaluate(spec, ..., j.device); j.tracker.log_metrics(...)
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from pipeline.joblog import to_log
from pipeline.launch import IDENTITY_ENV, RUNTIME_ENV
from pipeline.tracking import JOURNAL_DIR, Tracker

if TYPE_CHECKING:  # torch is imported by `start`: the rule files import this module's specs at DAG build
    import torch

EXAMPLE_RUNTIME = ('{"threads": 1, "tracking": {"uri": null, "enabled": false, "live": true, "system_metrics": false, '
                   '"journal": "results/mlflow-journal"}}')


def _json_env(name: str, example: str) -> dict[str, Any]:
    raw = os.environ.get(name)
    if raw is None:
        raise SystemExit(f"{name} is not set: run this through Snakemake, or set it to a JSON object such as {example}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{name} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SystemExit(f"{name} must be a JSON object, got {raw!r}")
    return value


def settings() -> dict[str, Any]:
    """How this job runs (threads, tracking): the JSON object the workflow put in PIPELINE_RUNTIME."""
    value = _json_env(RUNTIME_ENV, EXAMPLE_RUNTIME)
    missing = [k for k in ("threads", "tracking") if k not in value]
    if missing:
        raise SystemExit(f"{RUNTIME_ENV} lacks {missing[0]!r}; expected an object such as {EXAMPLE_RUNTIME}")
    return value


def identity() -> tuple[str, dict[str, str]]:
    """(rule, wildcards) of a launched job, from PIPELINE_JOB (set by pipeline.launch --job)."""
    value = _json_env(IDENTITY_ENV, '{"rule": "ga_train", "wildcards": {"seed": "0"}}')
    return str(value["rule"]), {k: str(v) for k, v in value["wildcards"].items()}


def params_of(spec: Any) -> dict[str, Any]:
    """What a job's tracker records as its parameters: a spec dataclass as a dict, a mapping as it is."""
    if dataclasses.is_dataclass(spec):
        return dataclasses.asdict(spec)
    return dict(spec or {})


@dataclass
class Job:
    """A running job: who it is, where it computes, and its MLflow mirror."""

    study: str
    rule: str
    wildcards: dict[str, str]
    threads: int
    device: "torch.device"
    rank: int
    tracker: Tracker = field(repr=False)


@contextlib.contextmanager
def start(study: str, *, snakemake: Any = None, device: str = "cpu", seed: int | None = None,
          params: Any = None) -> Iterator[Job]:
    """Set up this process as one job of `study` and open its tracker (a child of the invocation's parent run).

    `snakemake` is the object of a `script:` job: its log receives stdout and stderr, and its rule and
    wildcards name the tracker's run. Without it (a launched job) they come from PIPELINE_JOB.
    """
    if snakemake is not None:
        if snakemake.log:
            to_log(snakemake.log[0])
        rule, wildcards = snakemake.rule, {k: str(v) for k, v in snakemake.wildcards.items()}
    else:
        rule, wildcards = identity()
    from pipeline import runtime

    cfg = settings()
    threads, tracking = int(cfg["threads"]), cfg["tracking"]
    # A PIPELINE_RUNTIME written by hand (a job launched outside Snakemake) may predate `live`: it mirrors live,
    # the schema's default; the workflow always says, with the journal folder it replays.
    journal = None if tracking.get("live", True) else tracking.get("journal", JOURNAL_DIR)
    resolved = runtime.setup(threads, device, seed)
    rank = int(os.environ.get("RANK", "0"))
    with Tracker(study, rule, wildcards=wildcards, params=params_of(params), uri=tracking["uri"],
                 enabled=tracking["enabled"], rank=rank, system_metrics=bool(tracking["system_metrics"]),
                 journal=journal) as tracker:
        yield Job(study, rule, wildcards, threads, resolved, rank, tracker)


@dataclass(frozen=True)
class AnalyseSpec:
    """A study's analysis job: the part of its config block the claims are built from, and the scale label."""

    cfg: dict[str, Any]
    scale: str


def spec_from(cls: type, raw: Mapping[str, Any], what: str = "spec"):
    """`cls(**raw)` for a spec dataclass, naming any unknown or missing field instead of a bare TypeError."""
    names = {f.name for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    unknown, missing = sorted(set(raw) - names), sorted(required - set(raw))
    if unknown or missing:
        raise ValueError(f"{what} for {cls.__name__}: " + "; ".join(
            ([f"unknown field(s) {unknown}"] if unknown else []) + ([f"missing field(s) {missing}"] if missing else [])))
    return cls(**raw)
