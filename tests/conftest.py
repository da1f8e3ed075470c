"""Shared fixtures: the repository, a Snakemake runner, and one smoke run of the whole DAG.

The smoke run is session-scoped and pinned to one xdist worker (group "smoke"), so every
test that inspects it shares a single real Snakemake execution.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "config" / "presets" / "smoke.yaml"
PAPER = REPO / "config" / "presets" / "paper.yaml"
REHEARSAL = REPO / "config" / "presets" / "rehearsal.yaml"
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# What the workflow gives every job (pipeline.job): tests that call an entry point directly run as this job.
os.environ.setdefault("PIPELINE_RUNTIME", '{"threads": 1, "tracking": {"uri": null, "enabled": false, "system_metrics": false}}')
os.environ.setdefault("PIPELINE_JOB", '{"rule": "test", "wildcards": {}}')
# The venv's tools first, as in an activated venv: DeepSpeed JIT-builds an op with whichever
# `ninja` is on PATH, and the venv's (1.13) and Debian's (1.11) disagree on its build log,
# so jobs alternating between them rebuild it each time (minutes, under a lock all ranks wait on).
_VENV_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _VENV_BIN:
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")


def snakemake(workdir: Path, *args: str, check: bool = True, env: dict | None = None,
              timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run the project's Snakefile in `workdir` with the venv's snakemake."""
    exe = Path(sys.executable).parent / "snakemake"
    args = list(args)
    while "--configfile" in args:  # `--configfile=X` so a target after it is not read as a second file
        i = args.index("--configfile")
        args[i:i + 2] = [f"--configfile={args[i + 1]}"]
    cmd = [str(exe), "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def job_counts(dry_run_stdout: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}; {} when there is nothing to be done."""
    if "Job stats:" not in dry_run_stdout:
        return {}
    table = dry_run_stdout.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def assert_study_done(workdir: Path, study: str, figures: list[str], min_bytes: int) -> None:
    """The study's figures of the smoke run are real images, and asking for the study again has nothing to do."""
    for fig in figures:
        assert (workdir / "results" / study / "figures" / f"{fig}.png").stat().st_size > min_bytes, fig
    again = snakemake(workdir, "--configfile", str(SMOKE), study, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The smoke preset, end to end, in a temporary directory (the whole DAG, real jobs).

    What Snakemake printed is kept in `console.txt` next to the results.
    """
    work = tmp_path_factory.mktemp("smoke")
    out = snakemake(work, "--configfile", str(SMOKE), "--cores", "2")
    (work / "console.txt").write_text(out.stdout + out.stderr)
    return work


@pytest.fixture(scope="session")
def rehearsal_run(tmp_path_factory) -> Path:
    """The paper preset rehearsed on 2 CPU cores (config/presets/rehearsal.yaml stacked on paper.yaml), end to end.

    Its data paths are relative to the working directory, as for a user in the repository root.
    """
    work = tmp_path_factory.mktemp("rehearsal")
    (work / "tests").symlink_to(REPO / "tests")
    # one --configfiles flag with both files (Snakemake keeps only the last of repeated flags), nothing after it
    out = snakemake(work, "--cores", "2", "--configfiles", str(PAPER), str(REHEARSAL), check=False)
    (work / "console.txt").write_text(out.stdout + out.stderr)
    assert out.returncode == 0, f"the rehearsal failed:\n{out.stderr[-6000:]}"
    return work


# xdist (--dist loadgroup) hands out the groups with most tests first (smoke, cluster), then the rest in
# collection order. The rehearsal is one test of ~15 minutes: collected late, it once ran alone for 20
# minutes while the other worker idled, so it is moved to the front of that order.
def _after_the_rehearsal(item) -> bool:
    mark = item.get_closest_marker("xdist_group")
    return not (mark and mark.args and mark.args[0] == "rehearsal")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        for fixture in ("smoke_run", "rehearsal_run"):
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(fixture.removesuffix("_run")))
                item.add_marker(pytest.mark.slow)
    items.sort(key=_after_the_rehearsal)


@pytest.fixture(scope="session")
def single_process_group():
    """A one-rank gloo process group, as DeepSpeed's MoE layers need one to exist."""
    from pipeline.train.distributed import init

    return init("cpu")
