"""The DAG for real: the smoke preset end to end, partial re-runs, a killed job resuming."""
import copy
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml

from pipeline.config import load_config
from pipeline.io import read_parquet
from tests.conftest import REPO, SMOKE, job_counts, snakemake

GA = "results/gated_attention"


def test_smoke_preset_end_to_end(smoke_run):
    claims = read_parquet(smoke_run / "results/claims.parquet").to_pylist()
    ga = [c for c in claims if c["study"] == "gated_attention"]
    assert len(ga) == 8  # sink, activation, context × {dense, moe} + the text pair's loss claim + the stress claim
    assert [c["claim"] for c in ga if c["metric"] == "val_loss_x1"] == [
        "lower validation loss at equal tokens (dense, elementwise gate, text pair)"]
    assert {c["verdict"] for c in ga} <= {"reproduced", "not reproduced", "inconclusive"}
    assert all(c["scale"].startswith("smoke") for c in ga)
    md = (smoke_run / "results/claims.md").read_text()
    assert "less attention on the first token" in md
    for fig in ("loss", "sink", "activation", "context"):
        assert (smoke_run / GA / "figures" / f"{fig}.png").stat().st_size > 1000
    ev = read_parquet(smoke_run / GA / "eval/dense_elementwise_main_s0.parquet").to_pylist()
    metrics = {r["metric"] for r in ev}
    assert {"val_loss_x1", "val_loss_x1_se", "first_token_attn", "first_token_attn_head", "sink_rate", "bos_resid_peak",
            "bos_value_ratio_head", "gate_trigger_head", "gate_other_head", "val_loss_copy", "max_abs_hidden",
            "mean_gate", "spikes"} <= metrics
    # the loss per validation window (paired across models by the claims) averages to the scalar, which MLflow tracks
    windows = [r["value"] for r in ev if r["metric"] == "val_loss_x1" and r["window"] >= 0]
    (scalar,) = [r["value"] for r in ev if r["metric"] == "val_loss_x1" and r["window"] == -1 and r["layer"] == -1]
    assert len(windows) > 1 and scalar == pytest.approx(sum(windows) / len(windows))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{smoke_run / 'results/mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("gated_attention").experiment_id],
                                filter_string="tags.rule = 'ga_evaluate' and tags.wildcards = "
                                              "'ffn=dense,gate=elementwise,regime=main,seed=0'")
    assert run.data.metrics["val_loss_x1"] == pytest.approx(scalar)
    train = read_parquet(smoke_run / GA / "runs/dense_elementwise_main_s0/metrics.parquet").column_names
    assert {"loss_copy", "loss_bigram"} <= set(train)
    # the text pair trains on the tokenised corpus (no copy/bigram split there)
    assert (smoke_run / "results/data/text/manifest.json").exists()
    text = read_parquet(smoke_run / GA / "runs/dense_elementwise_text_s0/metrics.parquet").column_names
    assert "loss" in text and "loss_copy" not in text


def test_every_job_writes_to_its_log_not_the_console(smoke_run):
    """DeepSpeed's op loader prints from native code and child processes: it must land in the job's log."""
    console = (smoke_run / "console.txt").read_text()
    assert not [line for line in console.splitlines() if line.startswith("DeepSpeed ")], console[-3000:]
    logs = [p.read_text() for p in (smoke_run / "logs" / "gated_attention").glob("evaluate_*.log")]
    assert logs and all("DeepSpeed deepspeed.ops.comm" in text for text in logs)


def test_runs_are_tracked_in_mlflow(smoke_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{smoke_run / 'results/mlflow.db'}")
    exp = client.get_experiment_by_name("gated_attention")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.rule = 'ga_train'")
    assert len(runs) == 16  # main (dense and MoE), stress and text pairs: 4 × 2 gates × 2 seeds
    # the smoke preset journals its runs (tracking.live: false): all were mirrored when the workflow ended
    assert all(r.info.status == "FINISHED" for r in runs)
    assert not list((smoke_run / "results/mlflow-journal").glob("*.jsonl"))
    run = runs[0]
    assert {"study", "rule", "wildcards", "config_hash", "git_commit"} <= set(run.data.tags)
    assert "train.lr" in run.data.params
    history = client.get_metric_history(run.info.run_id, "loss")
    assert len(history) == max(h.step for h in history) > 1
    # every job is a child of its study's parent run for the invocation, which ended FINISHED
    parents = {r.data.tags.get("mlflow.parentRunId") for r in runs}
    assert len(parents) == 1 and None not in parents
    parent = client.get_run(parents.pop())
    assert parent.data.tags["rule"] == "snakemake" and parent.info.status == "FINISHED"
    assert parent.info.experiment_id == exp.experiment_id
    assert run.data.tags["wildcards"] == ",".join(f"{k}={run.data.tags[f'wildcard.{k}']}"
                                                  for k in ("ffn", "gate", "regime", "seed"))
    # every job of every study is named as Snakemake names its rule, under its study's parent run
    prefixes = {"gated_attention": "ga_", "crl": "crl_", "diffusion": "diffusion_", "rlvr": "rlvr_",
                "hivemind": "hivemind_", "data": "", "claims": "claims"}
    data_rules = {"train_tokenizer", "tokenize_shard", "text_manifest", "bigram_stats"}
    for study, prefix in prefixes.items():
        exp = client.get_experiment_by_name(study)
        jobs = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags["rule"] != "snakemake"]
        assert jobs, study
        for r in jobs:
            rule = r.data.tags["rule"]
            assert rule.startswith(prefix) and (study != "data" or rule in data_rules), (study, rule)
            assert r.data.tags.get("mlflow.parentRunId"), (study, rule)


def test_figures_are_artifacts_and_the_html_report_builds(smoke_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{smoke_run / 'results/mlflow.db'}")
    exp = client.get_experiment_by_name("gated_attention")
    (run,) = client.search_runs([exp.experiment_id], filter_string="tags.rule = 'ga_analyse'")
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"claims.parquet", "sink.png", "loss.png"} <= names
    snakemake(smoke_run, "--configfile", str(SMOKE), "--report", "results/report.html")
    assert (smoke_run / "results/report.html").stat().st_size > 10_000


@pytest.mark.slow
def test_killed_training_job_resumes_to_the_same_result(tmp_path):
    cfg = load_config(SMOKE)
    ga = cfg["studies"]["gated_attention"]
    ga["train"].update(steps=400, ckpt_every=4)  # long enough to be stopped mid-run
    conf = tmp_path / "long.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    target = f"{GA}/runs/dense_none_main_s0/metrics.parquet"
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    snakemake(ref, "--configfile", str(conf), "--cores", "1", target)

    exe = Path(sys.executable).parent / "snakemake"
    job = subprocess.Popen([str(exe), "-s", str(REPO / "Snakefile"), "-d", str(cut), "--configfile", str(conf),
                            "--cores", "1", target], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ckpt = cut / GA / "runs/dense_none_main_s0/ckpt"
    while job.poll() is None and not any(ckpt.glob("step*[0-9]")):
        time.sleep(0.1)
    assert job.poll() is None, "the job ended before its first checkpoint"
    trainers = [p for p in psutil.process_iter(["cmdline", "cwd"])
                if p.info["cwd"] == str(cut) and "gated_attention.train:main" in " ".join(p.info["cmdline"] or [])]
    assert trainers
    for p in trainers:
        p.send_signal(signal.SIGTERM)
    job.communicate()
    assert job.returncode != 0 and not (cut / target).exists()
    log = cut / "logs/gated_attention/train_dense_none_main_s0.log"
    assert "checkpoint saved at step" in log.read_text()

    snakemake(cut, "--configfile", str(conf), "--cores", "1", target)
    resumed = re.search(r"resumed from .*\(step (\d+)\)", log.read_text())
    assert resumed and int(resumed.group(1)) > 0
    a = read_parquet(ref / target).column("loss").to_numpy()
    b = read_parquet(cut / target).column("loss").to_numpy()
    assert len(a) == len(b) == 400
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
