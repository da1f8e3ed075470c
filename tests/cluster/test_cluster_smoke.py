"""The smoke preset's gated-attention study through `snakemake --profile profiles/slurm` on a real SLURM.

Only the site settings of the profile are filled in (partition, account, status command);
everything else is what a cluster user runs.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from pipeline.io import read_parquet

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster")]


def test_smoke_study_completes_through_sbatch(slurm_smoke):
    from cluster_support import slurm_job_ids

    work, out = slurm_smoke
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-6000:]

    # Every non-local job was submitted with sbatch and completed as a SLURM job.
    n_jobs = len(re.findall(r"^rule \w+:", log, flags=re.M))
    ids = slurm_job_ids(log)
    assert n_jobs > 10 and len(ids) == len(set(ids)) == n_jobs, log[-3000:]
    states = subprocess.run(["squeue", "--states=all", "--noheader", "-o", "%i|%T", "-j", ",".join(map(str, ids))],
                            capture_output=True, text=True, check=True).stdout.split()
    assert len(states) == n_jobs and {s.split("|")[1] for s in states} == {"COMPLETED"}
    # SLURM's log of every job is kept (slurm-keep-successful-logs).
    kept = {int(p.stem) for p in (work / "logs" / "slurm").rglob("*.log")}
    assert set(ids) <= kept

    # Training ranks ran as an srun job step inside their allocation.
    train_logs = sorted((work / "logs" / "gated_attention").glob("train_*.log"))
    assert train_logs
    for f in train_logs:
        assert "launch: srun --ntasks=1" in f.read_text(), f

    # The study's outputs are there and well-formed.
    claims = read_parquet(work / "results" / "gated_attention" / "claims.parquet").to_pylist()
    assert claims and {r["study"] for r in claims} == {"gated_attention"}
    assert {r["verdict"] for r in claims} <= {"reproduced", "not reproduced", "inconclusive"}
    for fig in ("loss", "sink", "activation", "context"):
        assert (work / "results" / "gated_attention" / "figures" / f"{fig}.png").stat().st_size > 1000
