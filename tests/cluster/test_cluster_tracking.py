"""pipeline.tracking against a real `mlflow server` and against one shared sqlite store.

Why: on a cluster many jobs mirror to MLflow at once. Every run, metric and artifact must
arrive; a server that goes away mid-run must not fail a job or lose its Parquet metrics
(and the job must say what was not mirrored); and with the embedded sqlite default,
concurrent jobs must never die of "database is locked".
These tests need no SLURM: the jobs are plain processes started at the same instant.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from cluster_support import HERE

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]

JOB = HERE / "jobs" / "tracked_job.py"


def start_jobs(tmp: Path, names: list[str], uri: str, steps: int, *extra: str) -> dict[str, subprocess.Popen]:
    start_at = time.time() + 3.0  # line the jobs up so their writes overlap
    procs = {}
    for name in names:
        cmd = [sys.executable, str(JOB), "--name", name, "--out", str(tmp / name), "--steps", str(steps),
               "--uri", uri, "--start-at", str(start_at), *extra]
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)
    return procs


def finish(procs: dict[str, subprocess.Popen], timeout: float = 300) -> dict[str, tuple[int, str]]:
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=timeout)
        out[name] = (p.returncode, stdout + stderr)
    return out


def runs_by_name(client: MlflowClient, prefix: str) -> dict[str, object]:
    exp = client.get_experiment_by_name("cluster_tests")
    assert exp is not None, "no experiment was created"
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`wildcard.name` LIKE '{prefix}%'")
    return {r.data.tags["wildcard.name"]: r for r in runs}


def assert_all_arrived(client: MlflowClient, runs: dict, names: list[str], steps: int) -> None:
    assert sorted(runs) == sorted(names)
    for name, run in runs.items():
        assert run.info.status == "FINISHED", name
        assert run.data.params["steps"] == str(steps)
        for key in ("loss", "acc"):
            hist = client.get_metric_history(run.info.run_id, key)
            assert sorted(m.step for m in hist) == list(range(1, steps + 1)), (name, key)
        loss = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "loss")}
        assert loss[steps] == pytest.approx(1.0 / steps)
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]


def test_concurrent_jobs_all_arrive_at_the_server(mlflow_server, tmp_path):
    names = [f"srv-{i}" for i in range(4)]
    steps = 120
    results = finish(start_jobs(tmp_path, names, mlflow_server.uri, steps, "--flush-every", "10"))
    for name, (rc, text) in results.items():
        assert rc == 0, text
        assert "Warning" not in text and "not mirrored" not in text, text
    client = MlflowClient(mlflow_server.uri)
    runs = runs_by_name(client, "srv-")
    assert_all_arrived(client, runs, names, steps)
    # Each artifact went through the server's proxy into the server's own artifact store.
    stored = {p.parts[-3] for p in (mlflow_server.root / "artifacts").rglob("note.txt")}
    assert {r.info.run_id for r in runs.values()} <= stored


def test_server_stopped_mid_run_jobs_finish_and_say_what_was_lost(fresh_mlflow_server, tmp_path):
    names = [f"stop-{i}" for i in range(3)]
    steps, hold = 60, 20
    go = tmp_path / "go"
    procs = {}
    start_at = time.time() + 3.0
    for name in names:
        cmd = [sys.executable, str(JOB), "--name", name, "--out", str(tmp_path / name), "--steps", str(steps),
               "--uri", fresh_mlflow_server.uri, "--start-at", str(start_at), "--hold-at", str(hold),
               "--ready", str(tmp_path / f"{name}.ready"), "--go", str(go)]
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 180
    while not all((tmp_path / f"{n}.ready").exists() for n in names):
        assert time.monotonic() < deadline, "jobs never reached the hold point"
        assert all(p.poll() is None for p in procs.values()), finish(procs)
        time.sleep(0.1)
    # The first `hold` steps are on the server; now it goes away for good.
    client = MlflowClient(fresh_mlflow_server.uri)
    before = runs_by_name(client, "stop-")
    for run in before.values():
        assert len(client.get_metric_history(run.info.run_id, "loss")) == hold
    fresh_mlflow_server.stop()
    go.touch()

    for name, (rc, text) in finish(procs).items():
        assert rc == 0, text
        # Parquet, the source of truth, is complete.
        table = pq.read_table(tmp_path / name / "metrics.parquet")
        assert table.column("step").to_pylist() == list(range(1, steps + 1))
        # One warning says mirroring stopped, one says exactly what was not mirrored.
        assert "mirroring stops for this job" in text, text
        lost = 2 * (steps - hold)  # two metrics per step after the hold point
        assert f"not mirrored to MLflow ({fresh_mlflow_server.uri}): {lost} metric values, 1 artifacts" in text, text
        assert "note.txt" in text


def test_concurrent_jobs_on_one_sqlite_store_never_lock(tmp_path):
    db = tmp_path / "results" / "mlflow.db"
    uri = f"sqlite:///{db}"
    names = [f"sql-{i}" for i in range(4)]
    steps = 100
    # flush every 5 steps: many small transactions from every job, all overlapping
    results = finish(start_jobs(tmp_path, names, uri, steps, "--flush-every", "5"))
    for name, (rc, text) in results.items():
        assert rc == 0, text
        assert "database is locked" not in text, text
        assert "failed while" not in text and "not mirrored" not in text, text
    client = MlflowClient(uri)
    assert_all_arrived(client, runs_by_name(client, "sql-"), names, steps)
