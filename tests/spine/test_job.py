"""pipeline.job, the set-up every job runs: who it is, how it runs, and its tracker run, on a real sqlite store."""
import json
import os
import time
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from mlflow.tracking import MlflowClient

from pipeline import job


@dataclass(frozen=True)
class Spec:
    lr: float
    seed: int


def runtime(monkeypatch, tmp_path, **tracking):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv(job.RUNTIME_ENV, json.dumps(
        {"threads": 1, "tracking": {"uri": uri, "enabled": True, "live": True, "system_metrics": False,
                                    "journal": str(tmp_path / "journal"), **tracking}}))
    return MlflowClient(uri)


def only_run(client, study):
    runs = client.search_runs([client.get_experiment_by_name(study).experiment_id])
    assert len(runs) == 1
    return runs[0]


def test_launched_job_is_named_as_snakemake_names_it(monkeypatch, tmp_path):
    client = runtime(monkeypatch, tmp_path)
    monkeypatch.setenv(job.IDENTITY_ENV, json.dumps({"rule": "ga_train", "wildcards": {"seed": 3, "ffn": "dense"}}))
    with job.start("gated_attention", device="cpu", seed=3, params=Spec(lr=0.1, seed=3)) as j:
        assert (j.rule, j.wildcards, j.device, j.threads) == ("ga_train", {"seed": "3", "ffn": "dense"},
                                                               torch.device("cpu"), 1)
        first = torch.rand(1)
        j.tracker.log_metrics({"loss": 1.5}, step=0)
    torch.manual_seed(3)
    assert torch.equal(first, torch.rand(1))  # seeded by the set-up
    run = only_run(client, "gated_attention")
    assert run.data.tags["rule"] == "ga_train"
    assert run.data.tags["wildcard.seed"] == "3" and run.data.tags["wildcards"] == "ffn=dense,seed=3"
    assert run.data.params == {"lr": "0.1", "seed": "3"}
    assert run.data.metrics == {"loss": 1.5}


def test_script_job_takes_rule_wildcards_and_log_from_snakemake(monkeypatch, tmp_path, capfd):
    client = runtime(monkeypatch, tmp_path)
    monkeypatch.delenv(job.IDENTITY_ENV, raising=False)
    log = tmp_path / "job.log"
    smk = SimpleNamespace(rule="crl_evaluate", wildcards=SimpleNamespace(items=lambda: [("crl_net", "d4_w16")]),
                          log=[str(log)])
    saved = os.dup(1), os.dup(2)  # the set-up points fds 1 and 2 at the job log: give them back after
    try:
        with job.start("crl", snakemake=smk) as j:
            os.write(2, b"hello from the job\n")  # as native code writes (DeepSpeed's compiler probe, torch)
    finally:
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
    assert "hello from the job" in log.read_text()
    assert j.rule == "crl_evaluate"
    assert only_run(client, "crl").data.tags["wildcard.crl_net"] == "d4_w16"


def test_system_metrics_are_recorded_when_asked(monkeypatch, tmp_path):
    client = runtime(monkeypatch, tmp_path, system_metrics=True)
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    monkeypatch.setenv(job.IDENTITY_ENV, json.dumps({"rule": "diffusion_train", "wildcards": {}}))
    with job.start("diffusion") as j:
        run_id = j.tracker._run_id
        for _ in range(600):  # until the monitor has published a sample (a guard against hanging, not a time limit)
            if any(k.startswith("system/") for k in client.get_run(run_id).data.metrics):
                break
            time.sleep(0.1)
    assert any(k.startswith("system/cpu") for k in client.get_run(run_id).data.metrics)


def test_without_system_metrics_none_are_recorded(monkeypatch, tmp_path):
    client = runtime(monkeypatch, tmp_path)
    monkeypatch.setenv(job.IDENTITY_ENV, json.dumps({"rule": "diffusion_train", "wildcards": {}}))
    with job.start("diffusion") as j:
        j.tracker.log_metrics({"loss": 1.0}, step=0)
    assert set(only_run(client, "diffusion").data.metrics) == {"loss"}


def test_spec_from_names_unknown_and_missing_fields():
    assert job.spec_from(Spec, {"lr": 0.1, "seed": 0}) == Spec(0.1, 0)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['threads'\]; missing field\(s\) \['seed'\]"):
        job.spec_from(Spec, {"lr": 0.1, "threads": 2})


@pytest.mark.parametrize("value, message", [
    (None, "PIPELINE_RUNTIME is not set"),
    ("{nope", "PIPELINE_RUNTIME is not valid JSON"),
    ('{"threads": 1}', "PIPELINE_RUNTIME lacks 'tracking'"),
])
def test_runtime_errors_say_what_to_set(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv(job.RUNTIME_ENV, raising=False)
    else:
        monkeypatch.setenv(job.RUNTIME_ENV, value)
    with pytest.raises(SystemExit, match=message):
        job.settings()


def test_a_runtime_without_live_mirrors_live_and_one_with_live_off_journals(monkeypatch, tmp_path):
    """A hand-written PIPELINE_RUNTIME from before `tracking.live` still works (live, the schema's default)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv(job.IDENTITY_ENV, json.dumps({"rule": "diffusion_train", "wildcards": {}}))
    monkeypatch.setenv(job.RUNTIME_ENV, json.dumps({"threads": 1, "tracking": {"uri": uri, "enabled": True,
                                                                              "system_metrics": False}}))
    with job.start("diffusion") as j:
        j.tracker.log_metrics({"loss": 1.0}, step=0)
    assert set(only_run(MlflowClient(uri), "diffusion").data.metrics) == {"loss"}
    client = runtime(monkeypatch, tmp_path / "deferred", live=False)
    with job.start("diffusion"):
        pass
    assert client.get_experiment_by_name("diffusion") is None  # nothing mirrored until the workflow replays
    assert len(list((tmp_path / "deferred" / "journal").glob("*.jsonl"))) == 1
