"""MLflow as a mirror of each job: browsing only, never a source of truth.

Each Snakemake invocation is one parent run per study (created when the workflow starts, see
`start_parents`), and each job a child run of it (experiment per study). Metrics are buffered and sent in
batches; with the embedded sqlite store every write holds an exclusive file lock so that
concurrent jobs never hit "database is locked". If the store or server fails, the job warns
once, stops mirroring and carries on: the Parquet files it writes are complete regardless.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

log = logging.getLogger(__name__)

DEFAULT_STORE = "results/mlflow.db"
FLUSH_EVERY_S = 10.0
# {study: parent run id} of this Snakemake invocation, set by the workflow's onstart handler and
# inherited by every job (local processes and SLURM jobs alike: sbatch exports the environment).
PARENTS_ENV = "PIPELINE_MLFLOW_PARENTS"


def config_hash(cfg: Any) -> str:
    """Stable short hash of a JSON-serialisable config (tags runs; names nothing on disk)."""
    blob = json.dumps(cfg, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def git_commit(cwd: str | Path = ".") -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def resolve_uri(uri: str | None = None) -> str:
    """Config value, else MLFLOW_TRACKING_URI, else the sqlite store under results/."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path(DEFAULT_STORE).resolve()}"


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """An exclusive file lock around a write to an sqlite store (no lock needed for a server)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri[len("sqlite:///"):])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _experiment(client, study: str, uri: str) -> str:
    exp = client.get_experiment_by_name(study)
    if exp is not None:
        return exp.experiment_id
    kwargs = {}
    if uri.startswith("sqlite:///"):
        root = Path(uri[len("sqlite:///"):]).parent / "mlartifacts"
        kwargs["artifact_location"] = root.resolve().as_uri()
    try:
        return client.create_experiment(study, **kwargs)
    except Exception:  # created concurrently by another job
        return client.get_experiment_by_name(study).experiment_id


def start_parents(studies: list[str], tracking: Mapping[str, Any]) -> dict[str, str]:
    """One parent run per study for this Snakemake invocation; {} (with a warning) if MLflow fails.

    Called once by the workflow's `onstart`; the jobs' runs become its children, so the MLflow UI
    groups them by invocation. A failure here never stops the workflow.
    """
    if not tracking["enabled"] or not studies:
        return {}
    uri = resolve_uri(tracking["uri"])
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        name = "snakemake " + time.strftime("%Y-%m-%d %H:%M:%S")
        parents = {}
        with _store_lock(uri):
            for study in studies:
                run = client.create_run(_experiment(client, study, uri), run_name=name,
                                        tags={"study": study, "rule": "snakemake", "git_commit": git_commit()})
                parents[study] = run.info.run_id
        return parents
    except Exception as exc:  # the mirror must never stop the workflow
        warnings.warn(f"MLflow tracking at {uri} failed while starting the parent runs ({type(exc).__name__}: "
                      f"{exc}); jobs will try to mirror on their own", RuntimeWarning, stacklevel=2)
        return {}


def end_parents(parents: Mapping[str, str], tracking: Mapping[str, Any], status: str) -> None:
    """Mark this invocation's parent runs FINISHED or FAILED (`onsuccess` / `onerror`)."""
    if not parents:
        return
    uri = resolve_uri(tracking["uri"])
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        with _store_lock(uri):
            for run_id in parents.values():
                client.set_terminated(run_id, status)
    except Exception as exc:
        warnings.warn(f"MLflow tracking at {uri} failed while ending the parent runs: {exc}", RuntimeWarning,
                      stacklevel=2)


def _parent_of(study: str) -> str | None:
    try:
        return json.loads(os.environ.get(PARENTS_ENV) or "{}").get(study)
    except (json.JSONDecodeError, AttributeError):
        return None


class Tracker:
    """One job's MLflow run. Use as a context manager; safe to use when MLflow is down."""

    def __init__(
        self,
        study: str,
        rule: str,
        *,
        wildcards: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        uri: str | None = None,
        enabled: bool = True,
        rank: int = 0,
        system_metrics: bool = False,
    ) -> None:
        self.study, self.rule = study, rule
        self.wildcards = dict(wildcards or {})
        self.params = _flatten(params or {})
        self.uri = resolve_uri(uri)
        # Only rank 0 mirrors; other ranks would only duplicate it.
        self.enabled = enabled and rank == 0
        self.system_metrics = system_metrics
        self._monitor = None
        self._client = None
        self._run_id: str | None = None
        self._buffer: list[Any] = []
        self._last_flush = time.monotonic()
        self.unmirrored_metrics = 0
        self.unmirrored_artifacts: list[str] = []
        self._failed = False

    # -- plumbing -------------------------------------------------------------------
    def _fail(self, what: str, exc: BaseException) -> None:
        if not self._failed:
            warnings.warn(
                f"MLflow tracking at {self.uri} failed while {what} ({type(exc).__name__}: {exc}); "
                "mirroring stops for this job, Parquet outputs are unaffected",
                RuntimeWarning,
                stacklevel=3,
            )
        self._failed = True

    def _call(self, what: str, fn, *args, **kwargs) -> Any:
        if not self.enabled or self._failed:
            return None
        try:
            with _store_lock(self.uri):
                return fn(*args, **kwargs)
        except Exception as exc:  # any failure of the mirror must not stop the job
            self._fail(what, exc)
            return None

    # -- lifecycle ------------------------------------------------------------------
    def __enter__(self) -> "Tracker":
        if not self.enabled:
            return self
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        self._call("starting the run", self._start)
        return self

    def _start(self) -> None:
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient(tracking_uri=self.uri)
        exp_id = _experiment(self._client, self.study, self.uri)
        wc = ",".join(f"{k}={v}" for k, v in sorted(self.wildcards.items()))
        tags = {
            "study": self.study,
            "rule": self.rule,
            "wildcards": wc,
            "config_hash": config_hash(self.params),
            "git_commit": git_commit(),
            **{f"wildcard.{k}": str(v) for k, v in self.wildcards.items()},
        }
        parent = _parent_of(self.study)
        if parent:
            tags["mlflow.parentRunId"] = parent
        name = f"{self.rule}[{wc}]" if wc else self.rule
        run = self._client.create_run(exp_id, run_name=name, tags=tags)
        self._run_id = run.info.run_id
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in self.params.items()]
        for i in range(0, len(items), 100):
            self._client.log_batch(self._run_id, params=items[i : i + 100])
        if self.system_metrics:  # CPU, memory, disk, network and (with pynvml) GPU, every 10 s, as system/*
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            self._monitor = SystemMetricsMonitor(self._run_id, tracking_uri=self.uri)
            self._monitor.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._monitor is not None:
            self._call("stopping the system metrics", self._monitor.finish)
        self.flush()
        if self._run_id is not None:
            status = "FINISHED" if exc_type is None else "FAILED"
            self._call("ending the run", self._client.set_terminated, self._run_id, status)
        if self.enabled and (self.unmirrored_metrics or self.unmirrored_artifacts):
            warnings.warn(
                f"not mirrored to MLflow ({self.uri}): {self.unmirrored_metrics} metric values, "
                f"{len(self.unmirrored_artifacts)} artifacts {self.unmirrored_artifacts[:5]}; "
                "the job's Parquet outputs hold everything",
                RuntimeWarning,
                stacklevel=2,
            )

    # -- logging --------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        for k, v in metrics.items():
            try:
                self._buffer.append(Metric(k, float(v), ts, int(step)))
            except (TypeError, ValueError):
                continue
        if time.monotonic() - self._last_flush > FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        self._last_flush = time.monotonic()
        if self._run_id is None or self._failed:
            self.unmirrored_metrics += len(batch)
            return
        for i in range(0, len(batch), 900):
            chunk = batch[i : i + 900]
            self._call("logging metrics", self._client.log_batch, self._run_id, metrics=chunk)
            if self._failed:
                self.unmirrored_metrics += len(batch) - i
                return

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if not self.enabled:
            return
        if self._run_id is None or self._failed:
            self.unmirrored_artifacts.append(str(path))
            return
        self._call("uploading an artifact", self._client.log_artifact, self._run_id, str(path), artifact_path)
        if self._failed:
            self.unmirrored_artifacts.append(str(path))
