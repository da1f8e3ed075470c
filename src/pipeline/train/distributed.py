"""Rank discovery for torchrun, SLURM (one srun task per GPU) and a single process.

DeepSpeed's `init_distributed` wants RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT (otherwise it tries MPI). torchrun sets them; under SLURM they are derived
from SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID, the address of the allocation's first node
(its `NodeAddr`, which is how SLURM itself reaches it: a node name need not resolve) and
the job id (every rank of a job computes the same port).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device


def first_host(nodelist: str) -> str:
    """First hostname of a SLURM nodelist such as 'gpu[03-05,07],cpu1' → 'gpu03'."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.split()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    head = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not head:
        raise ValueError(f"cannot parse SLURM nodelist {nodelist!r}")
    prefix, ranges = head.group(1), head.group(2)
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def node_addr(host: str) -> str:
    """The address SLURM reaches node `host` at (its NodeAddr), or `host` where scontrol cannot say."""
    try:
        out = subprocess.run(["scontrol", "show", "node", "--oneliner", host],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return host
    m = re.search(r"\bNodeAddr=(\S+)", out.stdout) if out.returncode == 0 else None
    return m.group(1) if m else host


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_env() -> None:
    """Fill in the torch.distributed variables from SLURM, or for a single process."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:  # torchrun or a user's launcher
        env.setdefault("LOCAL_RANK", env["RANK"])
        env.setdefault("MASTER_ADDR", "127.0.0.1")
        return
    if "SLURM_PROCID" in env and "SLURM_STEP_ID" in env:  # inside an srun step
        env["RANK"] = env["SLURM_PROCID"]
        env["WORLD_SIZE"] = env.get("SLURM_STEP_NUM_TASKS", env.get("SLURM_NTASKS", "1"))
        env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
        nodes = env.get("SLURM_STEP_NODELIST", env.get("SLURM_JOB_NODELIST", "localhost"))
        env["MASTER_ADDR"] = node_addr(first_host(nodes))
        env.setdefault("MASTER_PORT", str(15000 + int(env.get("SLURM_JOB_ID", "0")) % 20000))
        return
    env.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1")
    if "MASTER_PORT" not in env:
        env.update(MASTER_PORT=str(free_port()), PIPELINE_OWN_PORT="1")


def init(device: str = "auto") -> DistInfo:
    """Initialise torch.distributed through DeepSpeed (gloo on CPU, nccl on CUDA); idempotent."""
    import deepspeed

    from pipeline.runtime import setup

    setup_env()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ["LOCAL_RANK"])
    if device != "cpu" and torch.cuda.is_available():
        torch.cuda.set_device(local % torch.cuda.device_count())
        device = torch.device("cuda", torch.cuda.current_device())
        backend = "nccl"
    else:
        if device == "cuda":
            setup(torch.get_num_threads(), "cuda")  # raises a clear DeviceError
        device, backend = torch.device("cpu"), "gloo"
    if not torch.distributed.is_initialized():
        where = f"rank {rank}/{world} on {os.environ.get('SLURMD_NODENAME', socket.gethostname())} (local {local})"
        if world > 1:  # what to compare when ranks do not meet: same address and port on every rank?
            print(f"{where}: rendezvous at {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}",
                  file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        for attempt in range(5):
            try:
                deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False,
                                           verbose=False, rank=rank, world_size=world)
                break
            except torch.distributed.DistNetworkError:
                # a single process picked its own port and lost the race for it: pick another
                if world != 1 or os.environ.get("PIPELINE_OWN_PORT") != "1" or attempt == 4:
                    raise
                os.environ["MASTER_PORT"] = str(free_port())
        if world > 1:
            print(f"{where}: rendezvous done in {time.perf_counter() - t0:.2f} s", file=sys.stderr, flush=True)
    return DistInfo(rank, world, local, device)
