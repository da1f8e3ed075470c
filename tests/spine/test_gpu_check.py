"""bench/gpu_check.sh, the one prepared GPU check, in its CPU dry run: every step runs and reports."""
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_gpu_check_dry_run_runs_every_step_and_writes_a_summary(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run([str(REPO / "bench/gpu_check.sh"), "--dry-run"], capture_output=True, text=True, env=env)
    summary = (tmp_path / "summary.md").read_text()
    assert proc.returncode == 0, summary + proc.stdout[-3000:]
    assert "DRY RUN" in summary
    for step in ("rehearsal_cuda", "gated_attention_training", "rlvr_sampling", "crl_throughput"):
        assert f"## {step} — ok" in summary, step
    # the cuda rehearsal's DAG was built (train.device cuda), and each bench printed its table
    assert "train: {device: cuda" in (tmp_path / "one_gpu.yaml").read_text()
    assert "rlvr_rl" in (tmp_path / "rehearsal_cuda.log").read_text()
    for header in ("tokens_per_s", "| KV cache | tokens/s |", "env steps/s", "updates/s"):
        assert header in summary, header
