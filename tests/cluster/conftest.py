"""Fixtures for the cluster path: a real two-node SLURM, a real MLflow server, the SLURM profile.

Why: the cluster path (profile, sbatch/srun, preemption, tracking server) is only trusted
if it runs against the real components. These fixtures start them from the test itself and
stop exactly what they started. Where SLURM cannot be started (not root, no package access)
the tests that need it are skipped with the reason, never silently passed.

All tests in this directory run on one xdist worker (`xdist_group("cluster")` in each
module) so that one SLURM and one MLflow server serve them all.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_support import MlflowServer, free_port, write_site_profile  # noqa: E402
from slurm_local import LocalSlurm, SlurmUnavailable  # noqa: E402


@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> Iterator[LocalSlurm]:
    """A running two-node SLURM (node1, node2 on 127.0.0.2/3); SLURM_CONF points every client at it.

    Two nodes so that multi-node jobs run for real; single-node jobs land on either.
    """
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"), nodes=2)
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


@pytest.fixture
def site_profile(tmp_path) -> Path:
    """profiles/slurm with only the site settings (partition, account, status command) filled in."""
    return write_site_profile(tmp_path / "profile")


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


@pytest.fixture(scope="session")
def slurm_smoke(slurm, tmp_path_factory):
    """`snakemake gated_attention` on the smoke preset through the SLURM profile, once per session.

    Returns (workdir, completed process); the workdir's results seed the training and
    fault tests.
    """
    from cluster_support import SMOKE_STACK, SNAKEFILE, snakemake

    work = tmp_path_factory.mktemp("slurm_smoke")
    profile = write_site_profile(tmp_path_factory.mktemp("smoke_profile"))
    out = snakemake(["gated_attention", "--snakefile", str(SNAKEFILE), "--profile", str(profile),
                     "--configfile", *map(str, SMOKE_STACK)], work, timeout=1500)
    return work, out


@pytest.fixture(scope="session")
def reference(slurm_smoke, tmp_path_factory) -> dict[str, list[float]]:
    """The uninterrupted single-rank dense run (TrainRun()), with the local executor: what N ranks must match."""
    from cluster_support import SNAKEFILE, TrainRun, snakemake

    run = TrainRun()
    work, cfg = run.workdir(tmp_path_factory.mktemp("reference"), slurm_smoke[0])
    out = snakemake([run.target, "--snakefile", str(SNAKEFILE), "--cores", "1", "--configfile", str(cfg)], work)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return run.metrics(work)
