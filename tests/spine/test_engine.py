"""The DeepSpeed engine on real ranks: determinism, resume after SIGTERM, 1 vs 2 ranks, MoE."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from pipeline.io import read_parquet
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def launch(spec: dict, nproc: int = 1, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "PIPELINE_LAUNCHER": "auto", "PIPELINE_RUNTIME": json.dumps({"threads": 1, "tracking": {"uri": None, "enabled": False, "system_metrics": False}})}
    env.pop("SLURM_JOB_ID", None)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run([sys.executable, "-m", "pipeline.launch", "--nproc", str(nproc),
                           "tests.helpers.tiny_train:main", "--spec", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr[-5000:])
    return proc


def losses(out) -> np.ndarray:
    return read_parquet(out / "metrics.parquet").column("loss").to_numpy()


def test_same_seed_same_numbers(tmp_path):
    launch({"steps": 8, "out": str(tmp_path / "a")})
    launch({"steps": 8, "out": str(tmp_path / "b")})
    assert np.array_equal(losses(tmp_path / "a"), losses(tmp_path / "b"))
    a = torch.load(tmp_path / "a/weights/final.pt", weights_only=True)
    b = torch.load(tmp_path / "b/weights/final.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_checkpoints_and_resume_matches_uninterrupted(tmp_path):
    full = tmp_path / "full"
    launch({"steps": 14, "out": str(full)})
    cut = tmp_path / "cut"
    first = launch({"steps": 14, "out": str(cut), "signal_at": 6}, check=False)
    assert first.returncode == 128 + signal.SIGTERM, first.stderr[-2000:]
    assert "checkpoint saved at step 7" in first.stderr
    assert not (cut / "metrics.parquet").exists()
    assert [p.name for p in (cut / "ckpt").iterdir() if p.name.startswith("step")] == ["step00000007"]
    second = launch({"steps": 14, "out": str(cut)})
    assert "resumed from" in second.stderr
    assert json.loads((cut / "result.json").read_text())["resumed_from"] == 7
    np.testing.assert_allclose(losses(cut), losses(full), rtol=0, atol=1e-6)


def test_changed_config_does_not_resume_old_checkpoint(tmp_path):
    out = tmp_path / "run"
    launch({"steps": 6, "out": str(out), "ckpt_every": 3, "fp": "a"})
    proc = launch({"steps": 6, "out": str(out), "ckpt_every": 3, "fp": "b"})
    assert "belong to another config" in proc.stderr + proc.stdout
    assert json.loads((out / "result.json").read_text())["resumed_from"] == 0


def test_truncated_checkpoint_is_named(tmp_path):
    out = tmp_path / "run"
    launch({"steps": 6, "out": str(out), "ckpt_every": 3})
    newest = sorted((out / "ckpt").glob("step*"))[-1]
    f = newest / "mp_rank_00_model_states.pt"
    f.write_bytes(f.read_bytes()[:100])
    proc = launch({"steps": 8, "out": str(out), "ckpt_every": 3}, check=False)
    assert proc.returncode != 0
    assert "mp_rank_00_model_states.pt" in proc.stderr


def test_two_ranks_zero2_match_one_rank(tmp_path):
    launch({"steps": 10, "out": str(tmp_path / "one"), "zero": 2})
    launch({"steps": 10, "out": str(tmp_path / "two"), "zero": 2}, nproc=2)
    np.testing.assert_allclose(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-4, atol=1e-4)


def test_global_batch_must_divide_across_ranks(tmp_path):
    proc = launch({"steps": 2, "out": str(tmp_path / "x"), "batch_size": 7}, nproc=2, check=False)
    assert proc.returncode != 0
    assert "test.train.batch_size=7 does not divide across 2 rank(s)" in proc.stderr


def test_moe_with_expert_parallel_two(tmp_path):
    out = tmp_path / "moe"
    launch({"steps": 6, "out": str(out), "ffn": "moe", "ep_size": 2, "zero": 2}, nproc=2)
    assert np.all(np.isfinite(losses(out)))
    state = torch.load(out / "weights/final.pt", weights_only=True)
    experts = {k.split("deepspeed_experts.")[1].split(".")[0] for k in state if "deepspeed_experts" in k}
    assert experts == {"0", "1", "2", "3"}  # both ranks' experts in the exported weights
