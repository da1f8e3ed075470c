"""Training runs: outputs, determinism, exact resume, signals, stale checkpoints."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from pipeline.config import as_params
from pipeline.studies.crl.config import parse, run_block, run_config
from pipeline.studies.crl.specs import TrainSpec
from pipeline.studies.crl.train import plan, run
from pipeline.train.checkpoint import load_file, newest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny(smoke_block):
    """The smoke block made smaller still: a run takes well under a second."""
    smoke_block["env"]["episode_length"] = 20
    smoke_block["algo"].update(num_envs=16, unroll_length=20, updates_per_round=4, batch_size=32, buffer_size=60,
                               min_replay=20, total_env_steps=1600)
    smoke_block["evaluation"].update(episodes=8, hard_episodes=4)
    return smoke_block


def weights(path):
    return load_file(path / "final.pt")


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def curve(path):
    return pq.read_table(path / "metrics.parquet").drop(["wall_s", "cpu_s"])


def test_run_writes_outputs_and_is_deterministic(tmp_path, tiny):
    cfg = run_config(parse(tiny))
    r1 = run(cfg, depth=4, width=16, seed=3, out_dir=tmp_path / "a")
    run(cfg, depth=4, width=16, seed=3, out_dir=tmp_path / "b")
    prefill, rounds = plan(cfg)
    assert r1.finished and not r1.diverged and r1.rounds == rounds
    assert r1.env_steps == (prefill + rounds) * cfg.algo.num_envs * cfg.algo.unroll_length
    assert same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    assert curve(tmp_path / "a").equals(curve(tmp_path / "b"))
    info = json.loads((tmp_path / "a/run.json").read_text())
    assert info["updates"] == rounds * cfg.algo.updates_per_round and info["params"]["total"] > 0
    rows = pq.read_table(tmp_path / "a/metrics.parquet").to_pylist()
    assert {"eval_random_time_at_goal", "eval_hard_success_any", "train_time_at_goal", "critic_loss"} <= rows[-1].keys()
    run(cfg, depth=4, width=16, seed=4, out_dir=tmp_path / "c")
    assert not same_weights(weights(tmp_path / "a"), weights(tmp_path / "c")), "seed must matter"


def test_resume_gives_the_same_numbers_as_an_uninterrupted_run(tmp_path, tiny):
    cfg = run_config(parse(tiny))
    run(cfg, depth=4, width=16, seed=0, out_dir=tmp_path / "full")
    part = run(cfg, depth=4, width=16, seed=0, out_dir=tmp_path / "part", stop_after_rounds=1)
    assert not part.finished and newest(tmp_path / "part/ckpt")[0] == 1
    assert not (tmp_path / "part/final.pt").exists()
    done = run(cfg, depth=4, width=16, seed=0, out_dir=tmp_path / "part")
    assert done.finished
    assert same_weights(weights(tmp_path / "full"), weights(tmp_path / "part"))
    assert curve(tmp_path / "full").equals(curve(tmp_path / "part"))


def test_checkpoint_of_another_config_is_discarded(tmp_path, tiny):
    cfg = run_config(parse(tiny))
    run(cfg, depth=4, width=16, seed=0, out_dir=tmp_path / "x", stop_after_rounds=1)
    tiny["algo"]["actor_lr"] = 1e-3
    other = run_config(parse(tiny))
    run(other, depth=4, width=16, seed=0, out_dir=tmp_path / "x")
    run(other, depth=4, width=16, seed=0, out_dir=tmp_path / "fresh")
    assert same_weights(weights(tmp_path / "x"), weights(tmp_path / "fresh"))


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_rerun_resumes(tmp_path, tiny):
    tiny["algo"]["total_env_steps"] = 400_000  # long enough to be interrupted
    tiny["train"]["ckpt_every"] = 1000
    spec = as_params(TrainSpec(run_cfg=run_block(tiny), depth=4, width=16, seed=0, device="cpu",
                               out_dir=str(tmp_path / "r")))
    code = "import json,sys; from pipeline.studies.crl.train import main; main(json.loads(sys.argv[1]))"
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(spec)], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 120
        while "eval time at goal" not in (proc.stderr.readline() or "") and time.monotonic() < deadline:
            pass  # wait until the training loop logs its first evaluation
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0 and "re-run to resume" in err
    found = newest(tmp_path / "r/ckpt")
    assert found is not None
    assert not (tmp_path / "r/final.pt").exists()
    state = load_file(found[1] / "state.pt")
    assert state["counters"]["round"] == found[0] >= 1
