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
from pathlib import Path

import pytest
import torch

from pipeline.io import read_parquet

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster")]

STEPS, CKPT_EVERY = 600, 150
RUN = "dense_none_main_s0"
TARGET = f"results/gated_attention/runs/{RUN}/metrics.parquet"
TRAIN_LOG = f"logs/gated_attention/train_{RUN}.log"
COMPARED = ("loss", "lr", "grad_norm")


def one_run(config: dict, ranks: int = 1) -> None:
    ga = config["studies"]["gated_attention"]
    ga.update(seeds=[0], ffns=["dense"])
    ga["stress"]["enabled"] = False
    ga["train"].update(steps=STEPS, ckpt_every=CKPT_EVERY, ranks_per_node=ranks)


def training_workdir(tmp: Path, smoke_workdir: Path, ranks: int = 1) -> tuple[Path, Path]:
    from cluster_support import copy_text_data, write_config

    work = tmp / f"train_{ranks}rank"
    copy_text_data(smoke_workdir, work)
    return work, write_config(work / "config.yaml", lambda c: one_run(c, ranks))


def metrics(work: Path) -> dict[str, list[float]]:
    table = read_parquet(work / TARGET)
    assert table.column("step").to_pylist() == list(range(1, STEPS + 1))
    return {k: table.column(k).to_pylist() for k in COMPARED}


def job_id(log: Path) -> int | None:
    m = re.findall(r"SLURM jobid (\d+)", log.read_text()) if log.exists() else []
    return int(m[-1]) if m else None


def job_state(jid: int) -> str:
    out = subprocess.run(["squeue", "--states=all", "--noheader", "-o", "%T", "-j", str(jid)],
                         capture_output=True, text=True)
    return out.stdout.strip()


def complete_ckpts(work: Path) -> list[int]:
    ckpt = work / "results" / "gated_attention" / "runs" / RUN / "ckpt"
    return sorted(int(p.name[4:]) for p in ckpt.glob("step*") if re.fullmatch(r"step\d{8}", p.name))


@pytest.fixture(scope="session")
def reference(slurm_smoke, tmp_path_factory) -> dict[str, list[float]]:
    """The uninterrupted single-rank run, with the local executor."""
    from cluster_support import SNAKEFILE, snakemake

    work, cfg = training_workdir(tmp_path_factory.mktemp("reference"), slurm_smoke[0])
    out = snakemake([TARGET, "--snakefile", str(SNAKEFILE), "--cores", "1", "--configfile", str(cfg)], work)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return metrics(work)


def slurm_args(cfg: Path, profile: Path, *extra: str) -> list[str]:
    from cluster_support import SNAKEFILE

    return [TARGET, "--snakefile", str(SNAKEFILE), "--profile", str(profile), "--configfile", str(cfg), *extra]


def test_two_ranks_through_srun_match_one_rank(slurm, slurm_smoke, reference, site_profile, tmp_path):
    from cluster_support import snakemake

    work, cfg = training_workdir(tmp_path, slurm_smoke[0], ranks=2)
    out = snakemake(slurm_args(cfg, site_profile), work)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    (jid,) = re.findall(r"SLURM jobid (\d+)", out.stdout + out.stderr)
    job = subprocess.run(["scontrol", "show", "job", jid], capture_output=True, text=True, check=True).stdout
    assert "NumTasks=2" in job and "JobState=COMPLETED" in job, job
    assert "launch: srun --ntasks=2" in (work / TRAIN_LOG).read_text()
    got = metrics(work)
    # Same global batch split over 2 ranks: equal up to float summation order.
    for key in COMPARED:
        assert got[key] == pytest.approx(reference[key], rel=1e-3, abs=1e-5, nan_ok=True), key


def test_pre_timeout_signal_checkpoints_and_resubmission_resumes(slurm, slurm_smoke, reference, site_profile,
                                                                 tmp_path):
    from cluster_support import start_snakemake, wait_for

    work, cfg = training_workdir(tmp_path, slurm_smoke[0])
    log = work / "snakemake.log"
    proc = start_snakemake(slurm_args(cfg, site_profile), work, log)  # the profile's retries resubmit
    try:
        jid = wait_for(lambda: job_id(log), 120, "the training job's submission", proc)
        wait_for(lambda: CKPT_EVERY in complete_ckpts(work), 300, "the first periodic checkpoint", proc)
        subprocess.run(["scancel", "--signal=USR1", str(jid)], check=True)
        # The rule's log is rewritten by the resubmission: keep what the first attempt said.
        train_log = work / TRAIN_LOG
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
    assert f"(step {saved})" in (work / TRAIN_LOG).read_text()
    assert re.search(rf"resumed from \S+step{saved:08d} \(step {saved}\)", (work / TRAIN_LOG).read_text())
    assert _same(metrics(work), reference)


def _same(a: dict, b: dict) -> bool:
    return all(a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-9, nan_ok=True) for k in COMPARED)


def test_sigkill_between_checkpoints_resumes_from_last_complete(slurm, slurm_smoke, reference, site_profile,
                                                                tmp_path):
    from cluster_support import start_snakemake, wait_for

    work, cfg = training_workdir(tmp_path, slurm_smoke[0])
    log = work / "snakemake.log"
    proc = start_snakemake(slurm_args(cfg, site_profile, "--retries", "0"), work, log)
    try:
        jid = wait_for(lambda: job_id(log), 120, "the training job's submission", proc)
        wait_for(lambda: CKPT_EVERY in complete_ckpts(work), 300, "the first periodic checkpoint", proc)
        subprocess.run(["scancel", "--signal=KILL", str(jid)], check=True)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, "the killed job should have failed"
    assert not (work / TARGET).exists()

    # Every checkpoint left behind is complete and loads safely; nothing else is published.
    steps = complete_ckpts(work)
    assert steps and steps[-1] < STEPS
    run_dir = work / "results" / "gated_attention" / "runs" / RUN / "ckpt"
    for s in steps:
        for f in (run_dir / f"step{s:08d}").rglob("*.pt"):
            torch.load(f, map_location="cpu", weights_only=True)
    last = steps[-1]
    # A kill during a write leaves at most a `.partial` directory: plant one, as such a kill would.
    partial = run_dir / f"step{last + 1:08d}.partial"
    partial.mkdir()
    (partial / "mp_rank_00_model_states.pt").write_bytes(b"PK\x03\x04 truncated")

    from cluster_support import snakemake

    out = snakemake(slurm_args(cfg, site_profile, "--retries", "0"), work, log_name="rerun.log")
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    assert re.search(rf"resumed from \S+step{last:08d} \(step {last}\)", (work / TRAIN_LOG).read_text())
    assert not partial.exists()
    assert _same(metrics(work), reference)
