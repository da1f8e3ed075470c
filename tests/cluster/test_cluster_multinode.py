"""Training across two SLURM nodes: one rank on each, expert parallelism across them, faults.

Why: the paper preset trains on `nodes: 2` with expert parallelism; the places where
multi-node jobs break (the allocation's host list, MASTER_ADDR from its first node, ranks
and local ranks across hosts, a port both hosts agree on, expert groups spanning hosts, one
node's failure) only show with two `slurmd`. The session's cluster has two nodes whose names
no resolver knows (node1, node2 at 127.0.0.2/3), so the ranks must meet at the first node's
NodeAddr, as SLURM reaches it. Each case runs the real `ga_train` rule through the profile.
"""
from __future__ import annotations

import math
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from cluster_support import ACROSS_RANKS, COMPARED, TrainRun, job_id, job_state, same_metrics

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster")]

TWO_NODES = TrainRun(nodes=2)
# The fault run checkpoints more often (metrics do not depend on it): a kill always finds
# a checkpoint newer than the signal's and steps left after it.
FAULTED = TrainRun(nodes=2, ckpt_every=100)
MOE_ONE, MOE_TWO_NODES = TrainRun(ffn="moe"), TrainRun(ffn="moe", nodes=2)


def rendezvous(text: str) -> dict[int, tuple[str, str]]:
    """rank → (node, address:port) from the lines `pipeline.train.distributed.init` prints."""
    return {int(r): (node, at) for r, node, at in
            re.findall(r"rank (\d+)/\d+ on (\S+) \(local 0\): rendezvous at (\S+)", text)}


def check_spans_both_nodes(work: Path, run: TrainRun, jid: int) -> None:
    job = subprocess.run(["scontrol", "show", "job", str(jid)], capture_output=True, text=True, check=True).stdout
    assert "NumNodes=2" in job and "NumTasks=2" in job and "NodeList=node[1-2]" in job, job
    text = (work / run.log).read_text()
    assert "launch: srun --ntasks=2" in text
    met = rendezvous(text)
    # Each rank on its own node; both at node1's NodeAddr (the name `node1` does not resolve) and one port.
    assert {r: node for r, (node, _) in met.items()} == {0: "node1", 1: "node2"}, text[-3000:]
    assert len({at for _, at in met.values()}) == 1 and met[0][1].startswith("127.0.0.2:"), met
    assert len(re.findall(r"rendezvous done in", text)) == 2


def slurm_run(run: TrainRun, work: Path, cfg: Path, profile: Path) -> dict[str, list[float]]:
    from cluster_support import snakemake

    out = snakemake(run.slurm_args(cfg, profile), work)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    (jid,) = re.findall(r"SLURM jobid (\d+)", out.stdout + out.stderr)
    check_spans_both_nodes(work, run, int(jid))
    return run.metrics(work)


@pytest.fixture(scope="session")
def two_node_dense(slurm, slurm_smoke, tmp_path_factory) -> dict[str, list[float]]:
    """The uninterrupted dense run on node1 + node2, one rank each."""
    from cluster_support import write_site_profile

    tmp = tmp_path_factory.mktemp("two_nodes")
    work, cfg = TWO_NODES.workdir(tmp, slurm_smoke[0])
    return slurm_run(TWO_NODES, work, cfg, write_site_profile(tmp / "profile"))


def test_one_rank_on_each_of_two_nodes_matches_one_rank(two_node_dense, reference):
    for key in COMPARED:
        assert two_node_dense[key] == pytest.approx(reference[key], nan_ok=True, **ACROSS_RANKS), key


def test_moe_experts_split_over_two_nodes_match_one_rank(slurm, slurm_smoke, site_profile, tmp_path):
    """ep_size = 2 = world size: each node holds half the experts; tokens cross nodes both ways."""
    from cluster_support import SNAKEFILE, snakemake

    work, cfg = MOE_ONE.workdir(tmp_path / "one", slurm_smoke[0])
    out = snakemake([MOE_ONE.target, "--snakefile", str(SNAKEFILE), "--cores", "1", "--configfile", str(cfg)], work)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    reference = MOE_ONE.metrics(work)
    work, cfg = MOE_TWO_NODES.workdir(tmp_path / "two", slurm_smoke[0])
    got = slurm_run(MOE_TWO_NODES, work, cfg, site_profile)
    # Step 1: the same weights (each node builds its experts as one process would), the same
    # routing, tokens through the cross-node all-to-all and back, the gradient norm gathered
    # over the expert group.
    for key in COMPARED:
        assert got[key][0] == pytest.approx(reference[key][0], **ACROSS_RANKS), key
    # Later steps are not compared: top-k routing is discontinuous, the float order of a split
    # batch flips a near-tied token's expert now and then, and DeepSpeed's load-balancing loss
    # is per rank; the curves drift apart (measured: loss within 2e-5 for 150 steps with that
    # loss off, up to 0.7% apart by step 600).
    assert all(math.isfinite(v) for v in got["loss"]) and got["loss"][-1] < got["loss"][0]
    # The exported weights hold all experts, gathered from both nodes.
    state = torch.load(work / f"results/gated_attention/runs/{MOE_TWO_NODES.name}/weights/final.pt",
                       weights_only=True)
    experts = {k.split("deepspeed_experts.")[1].split(".")[0] for k in state if "deepspeed_experts" in k}
    assert experts == {"0", "1", "2", "3"}


def rank_process(jid: int, procid: int) -> tuple[int, str] | None:
    """(pid, node name) of rank `procid` of job `jid`: its task's SLURM variables, read from /proc."""
    want = {f"SLURM_JOB_ID={jid}".encode(), f"SLURM_PROCID={procid}".encode()}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if b"--worker" not in (d / "cmdline").read_bytes():
                continue
            env = set((d / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if want <= env:
            node = next((v.split(b"=", 1)[1].decode() for v in env if v.startswith(b"SLURMD_NODENAME=")), "?")
            return int(d.name), node
    return None


def test_faults_across_nodes(two_node_dense, slurm_smoke, site_profile, tmp_path):
    """The pre-timeout signal reaches the ranks on both nodes; one node's rank killed fails the whole
    job and leaves only complete checkpoints; the resubmission resumes from the newest one and
    ends with the uninterrupted run's numbers."""
    from cluster_support import snakemake, start_snakemake, wait_for

    work, cfg = FAULTED.workdir(tmp_path, slurm_smoke[0])
    args = FAULTED.slurm_args(cfg, site_profile, "--retries", "0")  # each failure is looked at, then resubmitted
    train_log = work / FAULTED.log

    # 1. SLURM's warning before the time limit, as `scancel --signal=USR1` sends it.
    log = work / "signalled.log"
    proc = start_snakemake(args, work, log)
    try:
        jid = wait_for(lambda: job_id(log), 120, "the training job's submission", proc)
        wait_for(lambda: FAULTED.complete_ckpts(work), 900, "the first periodic checkpoint", proc, poll=0.05)
        subprocess.run(["scancel", "--signal=USR1", str(jid)], check=True)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = train_log.read_text()
    assert proc.returncode != 0 and job_state(jid) == "FAILED", log.read_text()[-3000:]
    assert set(re.findall(r"stop signal received \(rank (\d+): (\w+)\)", text)) == {("0", "SIGUSR1"),
                                                                                    ("1", "SIGUSR1")}, text[-3000:]
    saved = int(re.search(r"checkpoint saved at step (\d+)", text).group(1))
    assert FAULTED.complete_ckpts(work)[-1] == saved < FAULTED.steps

    # 2. The resubmitted job resumes; then the rank on node2 dies.
    log = work / "killed.log"
    proc = start_snakemake(args, work, log)
    try:
        jid2 = wait_for(lambda: job_id(log), 120, "the resubmission", proc)
        # Snakemake deletes the failed job's log before the resubmission writes it anew.
        wait_for(lambda: train_log.exists() and re.search(rf"resumed from \S+step{saved:08d}", train_log.read_text()),
                 900, "the resume", proc)
        wait_for(lambda: FAULTED.complete_ckpts(work)[-1] > saved, 300, "a checkpoint after the resume", proc,
                 poll=0.02)
        pid, node = wait_for(lambda: rank_process(jid2, 1), 30, "rank 1's process", proc)
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert node == "node2"
    assert proc.returncode != 0 and job_state(jid2) == "FAILED", log.read_text()[-3000:]
    assert rank_process(jid2, 0) is None, "rank 0 on node1 outlived its job"
    run_dir = work / "results" / "gated_attention" / "runs" / FAULTED.name
    assert not (run_dir / "metrics.parquet").exists() and not (run_dir / "weights" / "final.pt").exists()
    steps = FAULTED.complete_ckpts(work)
    assert saved < steps[-1] < FAULTED.steps
    for f in (run_dir / "ckpt" / f"step{steps[-1]:08d}").rglob("*.pt"):
        torch.load(f, map_location="cpu", weights_only=True)

    # 3. Resubmitted once more, it resumes from the newest complete checkpoint and finishes.
    out = snakemake(args, work, log_name="rerun.log")
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    assert re.search(rf"resumed from \S+step{steps[-1]:08d} \(step {steps[-1]}\)", train_log.read_text())
    assert same_metrics(FAULTED.metrics(work), two_node_dense)
