"""Helpers for the cluster tests and the orchestration benchmark: site profile, Snakemake, MLflow server.

Why a module and not conftest.py: tests/conftest.py and this directory's conftest.py share
the module name `conftest`, so test modules and bench/ import these helpers from here.
"""
from __future__ import annotations

import contextlib
import copy
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.config import load_config
from slurm_local import PARTITION, free_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
VENV_BIN = Path(sys.executable).parent
__all__ = ["HERE", "REPO", "PROFILE", "SITE_SETTINGS", "write_site_profile", "snakemake", "slurm_job_ids",
           "MlflowServer", "free_port"]

# The only settings a site changes in profiles/slurm/config.yaml (the SITE comments there).
# This local cluster has no accounting database: no account, and `squeue` for job states.
SITE_SETTINGS = {
    "slurm-status-command": "squeue",
    "slurm-no-account": True,
    "default-resources": {"slurm_partition": PARTITION},
}


def write_site_profile(dest: Path, **extra) -> Path:
    """profiles/slurm/config.yaml with only the SITE settings filled in (plus `extra`)."""
    merged = copy.deepcopy(yaml.safe_load(PROFILE.read_text()))
    for key, value in {**SITE_SETTINGS, **extra}.items():
        if isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return dest


def snakemake(args: list[str], workdir: Path, *, env: dict | None = None, timeout: float = 900,
              log_name: str = "snakemake.log") -> subprocess.CompletedProcess:
    """Run Snakemake from the venv in `workdir`; its output is also kept in workdir/log_name."""
    full_env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", **(env or {})}
    cmd = [sys.executable, "-m", "snakemake", "--directory", str(workdir), *args]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=workdir)
    except subprocess.TimeoutExpired as exc:
        text = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise AssertionError(f"snakemake timed out after {timeout} s: {' '.join(cmd)}\n{text[-4000:]}") from exc
    (workdir / log_name).write_text(out.stdout + out.stderr)
    return out


def slurm_job_ids(text: str) -> list[int]:
    """SLURM job ids the slurm executor reports ("Job 3 has been submitted with SLURM jobid 12 ...")."""
    return [int(m) for m in re.findall(r"SLURM jobid (\d+)", text)]


@dataclass
class MlflowServer:
    """`mlflow server` on 127.0.0.1: sqlite backend, one worker, artifacts proxied by the server."""

    root: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> "MlflowServer":
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "server.log", "ab")
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--artifacts-destination", str(self.root / "artifacts"), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=self.root, start_new_session=True,  # its own process group: uvicorn is a child
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 20) -> str:
        f = self.root / "server.log"
        return "\n".join(f.read_text(errors="replace").splitlines()[-n:]) if f.exists() else ""

    def stop(self) -> None:
        """Stop the server and its uvicorn worker: the process group that start() created."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):  # a worker that outlived its parent
            os.killpg(self.proc.pid, signal.SIGKILL)


# -- the project's own workflow ----------------------------------------------------------
SNAKEFILE = REPO / "Snakefile"
SMOKE = REPO / "config" / "presets" / "smoke.yaml"
# What the cluster tests run: the smoke preset with gated attention on the tokenised corpus (smoke_text.yaml).
SMOKE_STACK = (SMOKE, Path(__file__).resolve().parent / "smoke_text.yaml")
TEXT_DATA = Path("results") / "data" / "text"


def write_config(dest: Path, edit=None) -> Path:
    """The cluster tests' smoke stack, changed by `edit(config)`, written to `dest` (a full config file)."""
    config = load_config(*SMOKE_STACK)
    if edit is not None:
        edit(config)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def copy_text_data(src_workdir: Path, dest_workdir: Path) -> None:
    """Reuse prepared token shards (mtimes kept, so Snakemake does not re-tokenise)."""
    import shutil

    shutil.copytree(src_workdir / TEXT_DATA, dest_workdir / TEXT_DATA)


def start_snakemake(args: list[str], workdir: Path, log: Path, env: dict | None = None) -> subprocess.Popen:
    """Snakemake in the background, its output streamed to `log` (for tests that act mid-run)."""
    full_env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", **(env or {})}
    fh = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--directory", str(workdir), *args],
                            stdout=fh, stderr=subprocess.STDOUT, env=full_env, cwd=workdir)
    fh.close()
    return proc


def wait_for(cond, timeout: float, what: str, proc: subprocess.Popen | None = None, poll: float = 0.1):
    """Poll `cond()` until it returns something truthy; fail naming `what` (and if `proc` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) before {what}")
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# -- training runs (tests/cluster/test_cluster_training.py, test_cluster_multinode.py, bench/) ----
COMPARED = ("loss", "lr", "grad_norm")
# N ranks split the same global batch: equal to one rank up to float summation order.
ACROSS_RANKS = {"rel": 1e-3, "abs": 1e-5}


@dataclass(frozen=True)
class TrainRun:
    """One `ga_train` job of the smoke model (seed 0, no gate), longer than the smoke preset's.

    `ranks_per_node` × `nodes` ranks; the MoE model shards its experts over all of them
    (`ep_size` = world size), as the paper preset does.
    """

    ffn: str = "dense"
    ranks_per_node: int = 1
    nodes: int = 1
    steps: int = 600
    ckpt_every: int = 150

    @property
    def name(self) -> str:
        return f"{self.ffn}_none_main_s0"

    @property
    def world(self) -> int:
        return self.ranks_per_node * self.nodes

    @property
    def target(self) -> str:
        return f"results/gated_attention/runs/{self.name}/metrics.parquet"

    @property
    def log(self) -> str:
        return f"logs/gated_attention/train_{self.name}.log"

    def edit(self, config: dict) -> None:
        ga = config["studies"]["gated_attention"]
        ga.update(seeds=[0], ffns=[self.ffn])
        ga["stress"]["enabled"] = False
        ga["train"].update(steps=self.steps, ckpt_every=self.ckpt_every, ranks_per_node=self.ranks_per_node,
                           nodes=self.nodes)
        ga["model"]["ep_size"] = self.world if self.ffn == "moe" else 1

    def workdir(self, tmp: Path, smoke_workdir: Path) -> tuple[Path, Path]:
        """A fresh working directory with the smoke run's token shards and this run's config file."""
        work = tmp / f"train_{self.ffn}_{self.nodes}x{self.ranks_per_node}"
        copy_text_data(smoke_workdir, work)
        return work, write_config(work / "config.yaml", self.edit)

    def metrics(self, work: Path) -> dict[str, list[float]]:
        from pipeline.io import read_parquet

        table = read_parquet(work / self.target)
        assert table.column("step").to_pylist() == list(range(1, self.steps + 1))
        return {k: table.column(k).to_pylist() for k in COMPARED}

    def complete_ckpts(self, work: Path) -> list[int]:
        ckpt = work / "results" / "gated_attention" / "runs" / self.name / "ckpt"
        return sorted(int(p.name[4:]) for p in ckpt.glob("step*") if re.fullmatch(r"step\d{8}", p.name))

    def slurm_args(self, cfg: Path, profile: Path, *extra: str) -> list[str]:
        return [self.target, "--snakefile", str(SNAKEFILE), "--profile", str(profile), "--configfile", str(cfg),
                *extra]


def job_id(log: Path) -> int | None:
    """The newest SLURM job id in a Snakemake log written so far."""
    m = re.findall(r"SLURM jobid (\d+)", log.read_text()) if log.exists() else []
    return int(m[-1]) if m else None


def job_state(jid: int) -> str:
    out = subprocess.run(["squeue", "--states=all", "--noheader", "-o", "%T", "-j", str(jid)],
                         capture_output=True, text=True)
    return out.stdout.strip()


def same_metrics(a: dict, b: dict) -> bool:
    """Equal up to float noise: what a resumed run must be to the uninterrupted one."""
    import pytest

    return all(a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-9, nan_ok=True) for k in COMPARED)
