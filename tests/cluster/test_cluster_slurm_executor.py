"""The SLURM profile against a real SLURM: jobs go through sbatch, multi-task jobs through srun.

A tiny workflow (independent of the studies) is run with `snakemake --profile <site profile>`,
where the site profile is profiles/slurm/config.yaml with only the SITE settings filled in.
Its jobs log to the MLflow server of the session, so several concurrent SLURM jobs mirror
to one server.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from cluster_support import HERE, snakemake, slurm_job_ids

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster")]

SNAKEFILE = r'''
N = int(config["n"])
TRACKED_JOB = config["tracked_job"]

rule all:
    input:
        expand("b/{i}.txt", i=range(N)),
        "multi.txt",
        expand("tracked/{i}/metrics.parquet", i=range(N)),

rule a:
    output: "a/{i}.txt"
    log: "logs/a/{i}.log"
    shell: "echo $SLURM_JOB_ID > {output:q} 2> {log:q}"

rule b:
    input: "a/{i}.txt"
    output: "b/{i}.txt"
    log: "logs/b/{i}.log"
    shell: "(cat {input:q}; echo $SLURM_JOB_ID) > {output:q} 2> {log:q}"

rule multi:
    output: "multi.txt"
    log: "logs/multi.log"
    resources: tasks=2, mpi="srun"
    shell:
        "{resources.mpi} -n {resources.tasks} python -c "
        "'import os; print(os.environ[\"SLURM_PROCID\"], os.environ[\"SLURM_NTASKS\"], os.environ[\"SLURM_JOB_ID\"])'"
        " > {output:q} 2> {log:q}"

rule tracked:
    output: "tracked/{i}/metrics.parquet"
    log: "logs/tracked/{i}.log"
    params: uri=config["uri"], name=lambda wc: f"slurm-{config['tag']}-{wc.i}"
    shell:
        "python {TRACKED_JOB:q} --name {params.name:q} --out tracked/{wildcards.i} "
        "--steps 30 --uri {params.uri:q} 2> {log:q}"
'''


def squeue_states(ids: list[int]) -> dict[int, str]:
    out = subprocess.run(["squeue", "--states=all", "--noheader", "-o", "%i|%T", "-j", ",".join(map(str, ids))],
                         capture_output=True, text=True, check=True)
    return {int(i): s for i, s in (line.split("|") for line in out.stdout.split())}


def test_workflow_runs_through_sbatch_and_srun(slurm, site_profile, mlflow_server, tmp_path):
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    n = 2
    (work / "config.yaml").write_text(yaml.safe_dump(
        {"n": n, "uri": mlflow_server.uri, "tag": "exec", "tracked_job": str(HERE / "jobs" / "tracked_job.py")}))
    out = snakemake(["--profile", str(site_profile), "--configfile", "config.yaml"], work)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]

    # Every job was an sbatch submission: one SLURM job id per Snakemake job, all completed.
    ids = slurm_job_ids(log)
    n_jobs = 3 * n + 1
    assert len(ids) == n_jobs == len(set(ids)), log[-3000:]
    assert set(squeue_states(ids).values()) == {"COMPLETED"}
    # ... and ran inside those SLURM jobs (SLURM_JOB_ID seen by the job's own shell).
    seen = set()
    for i in range(n):
        a_id, b_id = (int(x) for x in (work / "b" / f"{i}.txt").read_text().split())
        assert a_id != b_id
        seen |= {a_id, b_id}
    assert seen <= set(ids)
    # SLURM's own log of each job is kept under the profile's log directory.
    logs = {int(p.stem) for p in (work / "logs" / "slurm").rglob("*.log")}
    assert set(ids) <= logs

    # The multi-task job ran two srun tasks (ranks 0 and 1) inside one allocation.
    lines = sorted((work / "multi.txt").read_text().split("\n"))
    rows = [line.split() for line in lines if line]
    assert sorted(r[0] for r in rows) == ["0", "1"]
    assert {r[1] for r in rows} == {"2"} and len({r[2] for r in rows}) == 1
    assert int(rows[0][2]) in ids

    # Concurrent SLURM jobs mirrored everything to the tracking server.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server.uri)
    exp = client.get_experiment_by_name("cluster_tests")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`wildcard.name` LIKE 'slurm-exec-%'")
    assert len(runs) == n
    for run in runs:
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 30
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]
    for i in range(n):
        assert pq.read_table(work / "tracked" / str(i) / "metrics.parquet").num_rows == 30
