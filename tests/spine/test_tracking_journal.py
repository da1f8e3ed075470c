"""Deferred tracking (tracking.live: false): a job journals its run, the workflow replays it into MLflow.

What must hold: the replayed run is the run a live job would have written (tags, params, metric
history, artifacts, status), the job never imports MLflow, a killed job's run is still mirrored
(as KILLED), and a store that is down loses nothing: the journals wait for the next invocation.
All on real sqlite stores; the down store is a closed port.
"""
import json
import subprocess
import sys
import textwrap

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking import Tracker, replay


def tracking(uri: str) -> dict:
    return {"uri": uri, "enabled": True}


def a_job(tracker: Tracker, artifact) -> None:
    """The same calls, whichever way the tracker mirrors: three steps of two metrics and one artifact."""
    with tracker:
        for step in range(1, 4):
            tracker.log_metrics({"loss": 1.0 / step, "lr": 0.1 * step}, step=step)
        tracker.flush()
        tracker.log_artifact(artifact)


def the_run(uri: str):
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    history = {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)] for k in run.data.metrics}
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    return run, history, artifacts


def test_a_replayed_journal_is_the_run_a_live_job_writes(tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("hello")
    kwargs = dict(wildcards={"seed": 1}, params={"train": {"lr": 0.1}})
    live, deferred = (f"sqlite:///{tmp_path / name / 'mlflow.db'}" for name in ("live", "deferred"))
    a_job(Tracker("demo", "demo_train", uri=live, **kwargs), note)
    journal = tmp_path / "journal"
    a_job(Tracker("demo", "demo_train", uri=deferred, journal=journal, **kwargs), note)
    assert not (tmp_path / "deferred").exists()  # nothing reached the store before the replay
    assert replay(tracking(deferred), journal) == 1
    assert not list(journal.glob("*.jsonl"))  # a replayed journal is removed
    (a, a_history, a_artifacts), (b, b_history, b_artifacts) = the_run(live), the_run(deferred)
    assert a.data.tags == b.data.tags and a.data.params == b.data.params == {"train.lr": "0.1"}
    assert a_history == b_history and a_history["loss"] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert a_artifacts == b_artifacts == ["note.txt"]
    assert a.info.status == b.info.status == "FINISHED"
    assert a.info.run_name == b.info.run_name == "demo_train[seed=1]"
    assert b.info.start_time <= b.info.end_time  # the job's own times, not the replay's


def test_a_deferred_job_never_imports_mlflow(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from pipeline.tracking import Tracker
        with Tracker("demo", "demo_train", uri="sqlite:///{tmp_path}/mlflow.db", journal="{tmp_path}/journal") as t:
            t.log_metrics({{"loss": 1.0}}, step=1)
        print(sorted(m for m in sys.modules if m.split(".")[0] == "mlflow"))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    (journal,) = (tmp_path / "journal").glob("*.jsonl")
    assert [json.loads(line)["op"] for line in journal.read_text().splitlines()] == ["start", "metrics", "end"]


def test_a_killed_job_is_mirrored_as_killed_with_what_it_logged(tmp_path):
    uri, journal = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "journal"
    tracker = Tracker("demo", "demo_train", uri=uri, journal=journal).__enter__()
    tracker.log_metrics({"loss": 2.0}, step=1)
    tracker.flush()  # the job is killed here: no end, and half a line written
    (path,) = journal.glob("*.jsonl")
    with open(path, "a") as fh:
        fh.write('{"op": "metrics", "rows": [["loss", 1.')
    assert replay(tracking(uri), journal) == 1
    run, history, _ = the_run(uri)
    assert run.info.status == "KILLED" and history == {"loss": [(1, 2.0)]}


def test_a_store_that_is_down_keeps_every_journal_for_the_next_invocation(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    journal = tmp_path / "journal"
    for seed in (0, 1):
        with Tracker("demo", "demo_train", wildcards={"seed": seed}, uri="http://127.0.0.1:9", journal=journal) as t:
            t.log_metrics({"loss": 1.0}, step=1)
    with pytest.warns(RuntimeWarning, match=r"failed while replaying .*2 job runs stay in"):
        assert replay(tracking("http://127.0.0.1:9"), journal) == 0
    assert len(list(journal.glob("*.jsonl"))) == 2
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the next invocation, with a store that answers
    assert replay(tracking(uri), journal) == 2
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    assert sorted(r.data.tags["wildcard.seed"] for r in runs) == ["0", "1"]


def test_tracking_off_replays_nothing_and_keeps_the_journals(tmp_path):
    journal = tmp_path / "journal"
    with Tracker("demo", "demo_train", uri=f"sqlite:///{tmp_path / 'a.db'}", journal=journal):
        pass
    assert replay({"uri": None, "enabled": False}, journal) == 0
    assert len(list(journal.glob("*.jsonl"))) == 1
