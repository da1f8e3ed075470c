"""MLflow as a mirror of each job: browsing only, never a source of truth.

Each Snakemake invocation is one parent run per study (created when the workflow starts, see
`start_parents`), and each job a child run of it (experiment per study). Metrics are buffered and sent in
batches; with the embedded sqlite store every write holds an exclusive file lock so that
concurrent jobs never hit "database is locked". If the store or server fails, the job warns
once, stops mirroring and carries on: the Parquet files it writes are complete regardless.

Two ways to mirror (`tracking.live`). Live, each job opens its MLflow run and writes as it goes: what a
cluster run wants, to watch a week-long job. Deferred, a job writes its run to a journal file (JSON lines)
and the workflow replays every journal into MLflow when it ends (`replay`): on a CPU, importing MLflow
and opening its store costs each job ~2.5 s of CPU, more than many of the default's jobs compute.
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
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

log = logging.getLogger(__name__)

DEFAULT_STORE = "results/mlflow.db"
# Where deferred jobs write their runs until the workflow replays them (made absolute by export_runtime).
JOURNAL_DIR = "results/mlflow-journal"
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


class _MlflowRun:
    """One run in an MLflow store: what a live job writes as it goes, and what `replay` writes from a journal."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.client = None
        self.run_id: str | None = None

    def start(self, study: str, name: str, tags: Mapping[str, str], params: Mapping[str, str],
              start_time: int | None = None) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.uri)
        run = self.client.create_run(_experiment(self.client, study, self.uri), run_name=name, tags=dict(tags),
                                     start_time=start_time)
        self.run_id = run.info.run_id
        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, rows: list[tuple[str, float, int, int]]) -> None:
        from mlflow.entities import Metric

        for i in range(0, len(rows), 900):
            self.client.log_batch(self.run_id, metrics=[Metric(*r) for r in rows[i : i + 900]])

    def log_artifact(self, path: str, artifact_path: str | None) -> None:
        self.client.log_artifact(self.run_id, path, artifact_path)

    def end(self, status: str, end_time: int | None = None) -> None:
        self.client.set_terminated(self.run_id, status, end_time=end_time)


class _Journal:
    """One job's run as JSON lines in a file of its own, for `replay` to mirror when the workflow ends."""

    def __init__(self, directory: str | Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.path = Path(directory) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}.jsonl"
        self.run_id = None  # a run id exists only once replayed

    def _write(self, **event: Any) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(event) + "\n")

    def start(self, study: str, name: str, tags: Mapping[str, str], params: Mapping[str, str]) -> None:
        self._write(op="start", study=study, name=name, tags=dict(tags), params=dict(params), time=_now_ms())

    def log_metrics(self, rows: list[tuple[str, float, int, int]]) -> None:
        self._write(op="metrics", rows=rows)

    def log_artifact(self, path: str, artifact_path: str | None) -> None:
        self._write(op="artifact", path=str(Path(path).resolve()), artifact_path=artifact_path)

    def end(self, status: str) -> None:
        self._write(op="end", status=status, time=_now_ms())


def _now_ms() -> int:
    return int(time.time() * 1000)


def _events(path: Path) -> list[dict[str, Any]]:
    """A journal's events; a line torn by a killed job (only ever the last) is left out."""
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def replay(tracking: Mapping[str, Any], directory: str | Path = JOURNAL_DIR) -> int:
    """Mirror every journal in `directory` into the store of `tracking`, oldest first; the number replayed.

    Called when the workflow starts running jobs (journals a killed invocation left), succeeds or fails. A replayed
    journal is removed. A job that never ended (killed) becomes a KILLED run, a missing artifact is
    named. If the store fails, the rest stay for the next invocation, with a warning: nothing is lost.
    """
    files = sorted(Path(directory).glob("*.jsonl"))
    if not tracking["enabled"] or not files:
        return 0
    uri = resolve_uri(tracking["uri"])
    done, missing = 0, []
    for i, path in enumerate(files):
        events = _events(path)
        if not events or events[0]["op"] != "start":
            path.unlink()  # the job died before its run began: nothing to mirror
            continue
        first, run = events[0], _MlflowRun(uri)
        ended = next((e for e in events if e["op"] == "end"), None)
        try:
            with _store_lock(uri):
                run.start(first["study"], first["name"], first["tags"], first["params"], start_time=first["time"])
                for e in events[1:]:
                    if e["op"] == "metrics":
                        run.log_metrics([tuple(r) for r in e["rows"]])
                    elif e["op"] == "artifact" and Path(e["path"]).exists():
                        run.log_artifact(e["path"], e["artifact_path"])
                    elif e["op"] == "artifact":
                        missing.append(e["path"])
                run.end(ended["status"] if ended else "KILLED", end_time=ended["time"] if ended else None)
        except Exception as exc:  # the mirror must never stop the workflow
            warnings.warn(f"MLflow tracking at {uri} failed while replaying {path} ({type(exc).__name__}: {exc}); "
                          f"{len(files) - i} job runs stay in {directory} for the next invocation",
                          RuntimeWarning, stacklevel=2)
            return done
        path.unlink()
        done += 1
    if missing:
        warnings.warn(f"artifacts gone before they were mirrored to MLflow: {missing[:5]}", RuntimeWarning,
                      stacklevel=2)
    return done


class Tracker:
    """One job's MLflow run. Use as a context manager; safe to use when MLflow is down.

    With `journal` (a directory) the run goes to a journal file there, and MLflow is never imported by
    the job (see the module docstring); system metrics need a live run, so they keep it live.
    """

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
        journal: str | Path | None = None,
    ) -> None:
        self.study, self.rule = study, rule
        self.wildcards = dict(wildcards or {})
        self.params = _flatten(params or {})
        self.uri = resolve_uri(uri)
        # Only rank 0 mirrors; other ranks would only duplicate it.
        self.enabled = enabled and rank == 0
        self.system_metrics = system_metrics
        self.journal = None if system_metrics else journal
        self._monitor = None
        self._run: _MlflowRun | _Journal | None = None
        self._buffer: list[tuple[str, float, int, int]] = []
        self._last_flush = time.monotonic()
        self.unmirrored_metrics = 0
        self.unmirrored_artifacts: list[str] = []
        self._failed = False

    @property
    def _run_id(self) -> str | None:
        return self._run.run_id if self._run is not None else None

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
            if self.journal is not None:
                return fn(*args, **kwargs)
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
        run = _Journal(self.journal) if self.journal is not None else _MlflowRun(self.uri)
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
        run.start(self.study, name, tags, {k: str(v)[:6000] for k, v in self.params.items()})
        self._run = run
        if self.system_metrics:  # CPU, memory, disk, network and (with pynvml) GPU, every 10 s, as system/*
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            self._monitor = SystemMetricsMonitor(run.run_id, tracking_uri=self.uri)
            self._monitor.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._monitor is not None:
            self._call("stopping the system metrics", self._monitor.finish)
        self.flush()
        if self._run is not None:
            self._call("ending the run", self._run.end, "FINISHED" if exc_type is None else "FAILED")
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
        ts = _now_ms()
        for k, v in metrics.items():
            try:
                self._buffer.append((k, float(v), ts, int(step)))
            except (TypeError, ValueError):
                continue
        if time.monotonic() - self._last_flush > FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        self._last_flush = time.monotonic()
        if self._run is None or self._failed:
            self.unmirrored_metrics += len(batch)
            return
        self._call("logging metrics", self._run.log_metrics, batch)
        if self._failed:
            self.unmirrored_metrics += len(batch)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if not self.enabled:
            return
        if self._run is None or self._failed:
            self.unmirrored_artifacts.append(str(path))
            return
        self._call("uploading an artifact", self._run.log_artifact, str(path), artifact_path)
        if self._failed:
            self.unmirrored_artifacts.append(str(path))
