"""Fixtures for the cluster path: a real one-node SLURM, a real MLflow server, the SLURM profile.

Why: the cluster path (profile, sbatch/srun, preemption, tracking server) is only trusted
if it runs against the real components. These fixtures start them from the test itself and
stop exactly what they started. Where SLURM cannot be started (not root, no package access)
the tests that need it are skipped with the reason, never silently passed.

All tests in this directory run on one xdist worker (`xdist_group("cluster")` in each
module) so that one SLURM and one MLflow server serve them all.
"""
from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from slurm_local import PARTITION, LocalSlurm, SlurmUnavailable, free_port  # noqa: E402

REPO = HERE.parents[1]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
VENV_BIN = Path(sys.executable).parent

# The only settings a site changes in profiles/slurm/config.yaml (see the SITE comments there).
# This local cluster has no accounting database: no account, and `squeue` for job states.
SITE_SETTINGS = {
    "slurm-status-command": "squeue",
    "slurm-no-account": True,
    "default-resources": {"slurm_partition": PARTITION},
}


# -- SLURM ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> Iterator[LocalSlurm]:
    """A running one-node SLURM; SLURM_CONF points every client (sbatch, snakemake) at it."""
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except SlurmUnavailable as exc:
        print(f"\nSLURM tests skipped: {exc}", file=sys.stderr)
        pytest.skip(f"cannot start a local SLURM: {exc}")
    old = {k: os.environ.get(k) for k in cluster.env}
    os.environ.update(cluster.env)
    try:
        yield cluster
    finally:
        cluster.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def write_site_profile(dest: Path, **extra) -> Path:
    """profiles/slurm/config.yaml with only the SITE settings filled in (plus `extra`)."""
    profile = yaml.safe_load(PROFILE.read_text())
    merged = copy.deepcopy(profile)
    for key, value in {**SITE_SETTINGS, **extra}.items():
        if isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return dest


@pytest.fixture
def site_profile(tmp_path) -> Path:
    return write_site_profile(tmp_path / "profile")


def snakemake(args: list[str], workdir: Path, *, env: dict | None = None, timeout: float = 600,
              log_name: str = "snakemake.log") -> subprocess.CompletedProcess:
    """Run Snakemake from the venv; its combined output is also written to workdir/log_name."""
    full_env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", **(env or {})}
    cmd = [sys.executable, "-m", "snakemake", "--directory", str(workdir), *args]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=workdir)
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise AssertionError(f"snakemake timed out after {timeout} s: {' '.join(cmd)}\n{text[-4000:]}") from exc
    (workdir / log_name).write_text(out.stdout + out.stderr)
    return out


def slurm_job_ids(text: str) -> list[int]:
    """SLURM job ids the slurm executor reports ("... has been submitted with SLURM jobid 12 ...")."""
    import re

    return [int(m) for m in re.findall(r"SLURM jobid (\d+)", text)]


# -- MLflow server ----------------------------------------------------------------------
@dataclass
class MlflowServer:
    """`mlflow server` on 127.0.0.1 with a sqlite backend and proxied artifacts."""

    root: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> "MlflowServer":
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
        """Stop the server and its uvicorn worker: the process group this object started."""
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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow_server"), free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_mlflow_server(tmp_path) -> Iterator[MlflowServer]:
    """A server of this test's own, for tests that stop it."""
    server = MlflowServer(tmp_path / "mlflow_server", free_port()).start()
    try:
        yield server
    finally:
        server.stop()
