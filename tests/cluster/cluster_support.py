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
TEXT_DATA = Path("results") / "data" / "text"


def write_config(dest: Path, edit=None) -> Path:
    """The smoke preset, changed by `edit(config)`, written to `dest` (a full config file)."""
    config = load_config(SMOKE)
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
