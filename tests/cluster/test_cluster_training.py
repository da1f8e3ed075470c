"""Training jobs on a real SLURM: 2 ranks through srun, the pre-timeout signal, SIGKILL.

Why: a week of GPU time is only safe if a job that SLURM warns before its time limit
checkpoints and its resubmission resumes exactly, if a job killed outright loses only the
steps since its last complete checkpoint, and if N ranks started by srun train the same
model as one. Each case runs the real `ga_train` rule (gated-attention study, smoke model,
more steps) and compares its metrics with an uninterrupted single-rank run.

SLURM's warning before the time limit (`--signal=USR1@<s>` in the rule's resources) is
delivered to the job's steps; `scancel --signal=USR1 <job>` delivers the same signal to the
same processes, without waiting for a real time limit.
"""
from __future__ import annotations

import re
import subprocess

import pytest
import torch

from cluster_support import ACROSS_RANKS, COMPARED, TrainRun, job_id, job_state, same_metrics

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster")]

ONE = TrainRun()  # the reference: one rank (conftest's `reference`)
TWO = TrainRun(ranks_per_node=2)
STEPS, CKPT_EVERY = ONE.steps, ONE.ckpt_every


def test_two_ranks_through_srun_match_one_rank(slurm, slurm_smoke, reference, site_profile, tmp_path):
    from cluster_support import snakemake

    work, cfg = TWO.workdir(tmp_path, slurm_smoke[0])
    out = snakemake(TWO.slurm_args(cfg, site_profile), work)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    (jid,) = re.findall(r"SLURM jobid (\d+)", out.stdout + out.stderr)
    job = subprocess.run(["scontrol", "show", "job", jid], capture_output=True, text=True, check=True).stdout
    assert "NumTasks=2" in job and "JobState=COMPLETED" in job, job
    assert "launch: srun --ntasks=2" in (work / TWO.log).read_text()
    got = TWO.metrics(work)
    for key in COMPARED:
        assert got[key] == pytest.approx(reference[key], nan_ok=True, **ACROSS_RANKS), key


def test_pre_timeout_signal_checkpoints_and_resubmission_resumes(slurm, slurm_smoke, reference, site_profile,
                                                                 tmp_path):
    from cluster_support import start_snakemake, wait_for

    work, cfg = ONE.workdir(tmp_path, slurm_smoke[0])
    log = work / "snakemake.log"
    proc = start_snakemake(ONE.slurm_args(cfg, site_profile), work, log)  # the profile's retries resubmit
    try:
        jid = wait_for(lambda: job_id(log), 120, "the training job's submission", proc)
        wait_for(lambda: CKPT_EVERY in ONE.complete_ckpts(work), 300, "the first periodic checkpoint", proc)
        subprocess.run(["scancel", "--signal=USR1", str(jid)], check=True)
        # The rule's log is rewritten by the resubmission: keep what the first attempt said.
        train_log = work / ONE.log
        said = wait_for(lambda: re.search(r"checkpoint saved at step (\d+)", train_log.read_text()), 120,
                        "the signalled job to checkpoint", proc, poll=0.05)
        saved = int(said.group(1))
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert proc.returncode == 0, text[-5000:]
    assert CKPT_EVERY < saved < STEPS
    first, second = [int(i) for i in re.findall(r"SLURM jobid (\d+)", text)]
    assert first == jid and job_state(first) == "FAILED" and job_state(second) == "COMPLETED"
    assert f"(step {saved})" in (work / ONE.log).read_text()
    assert re.search(rf"resumed from \S+step{saved:08d} \(step {saved}\)", (work / ONE.log).read_text())
    assert same_metrics(ONE.metrics(work), reference)


def test_sigkill_between_checkpoints_resumes_from_last_complete(slurm, slurm_smoke, reference, site_profile,
                                                                tmp_path):
    from cluster_support import start_snakemake, wait_for

    work, cfg = ONE.workdir(tmp_path, slurm_smoke[0])
    log = work / "snakemake.log"
    proc = start_snakemake(ONE.slurm_args(cfg, site_profile, "--retries", "0"), work, log)
    try:
        jid = wait_for(lambda: job_id(log), 120, "the training job's submission", proc)
        wait_for(lambda: CKPT_EVERY in ONE.complete_ckpts(work), 300, "the first periodic checkpoint", proc)
        subprocess.run(["scancel", "--signal=KILL", str(jid)], check=True)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, "the killed job should have failed"
    assert not (work / ONE.target).exists()

    # Every checkpoint left behind is complete and loads safely; nothing else is published.
    steps = ONE.complete_ckpts(work)
    assert steps and steps[-1] < STEPS
    run_dir = work / "results" / "gated_attention" / "runs" / ONE.name / "ckpt"
    for s in steps:
        for f in (run_dir / f"step{s:08d}").rglob("*.pt"):
            torch.load(f, map_location="cpu", weights_only=True)
    last = steps[-1]
    # A kill during a write leaves at most a `.partial` directory: plant one, as such a kill would.
    partial = run_dir / f"step{last + 1:08d}.partial"
    partial.mkdir()
    (partial / "mp_rank_00_model_states.pt").write_bytes(b"PK\x03\x04 truncated")

    from cluster_support import snakemake

    out = snakemake(ONE.slurm_args(cfg, site_profile, "--retries", "0"), work, log_name="rerun.log")
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    assert re.search(rf"resumed from \S+step{last:08d} \(step {last}\)", (work / ONE.log).read_text())
    assert not partial.exists()
    assert same_metrics(ONE.metrics(work), reference)
