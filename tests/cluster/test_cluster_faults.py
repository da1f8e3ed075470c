"""Bad input on the cluster path: the one job that meets it fails, naming the file or key; nothing else is lost.

Each case starts from a copy of the finished smoke run (`slurm_smoke`), breaks one thing,
asks for a target through the SLURM profile (`--retries 0`: a bad input does not get better
on a second try) and checks the failed job's log, and that every output of the finished jobs
is byte-for-byte what it was.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import pytest

from cluster_support import SMOKE_STACK
from pipeline.io import read_parquet

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster")]

RUNS = "results/gated_attention/runs"


def digests(work: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every result file (checkpoints and the skipped runs aside)."""
    out = {}
    for p in sorted((work / "results").rglob("*")):
        rel = p.relative_to(work).as_posix()
        if p.is_file() and "/ckpt/" not in rel and not rel.endswith(".db") and not any(s in rel for s in skip):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def finished_copy(smoke: Path, dest: Path) -> Path:
    shutil.copytree(smoke, dest, symlinks=True)
    return dest


def forget_run(work: Path, run: str, keep_ckpt: bool = False) -> str:
    """Delete a training run's outputs (and checkpoints) so that asking for it runs the job again."""
    d = work / RUNS / run
    (d / "metrics.parquet").unlink()
    (d / "weights" / "final.pt").unlink()
    if not keep_ckpt:
        shutil.rmtree(d / "ckpt")
    return f"{RUNS}/{run}/metrics.parquet"


def run_slurm(work: Path, profile: Path, targets: list[str], configfiles):
    from cluster_support import SNAKEFILE, snakemake

    files = [configfiles] if isinstance(configfiles, Path) else list(configfiles)
    out = snakemake([*targets, "--snakefile", str(SNAKEFILE), "--profile", str(profile), "--retries", "0",
                     "--configfile", *map(str, files)], work)
    return out, out.stdout + out.stderr


def failed_slurm_jobs(text: str) -> list[str]:
    return re.findall(r"SLURM-job '(\d+)' failed", text)


@pytest.fixture
def finished(slurm_smoke, tmp_path) -> Path:
    work, out = slurm_smoke
    assert out.returncode == 0, "the smoke run through SLURM failed; see test_cluster_smoke"
    return finished_copy(work, tmp_path / "work")


def test_corrupt_token_shard_fails_naming_the_file(finished, site_profile):
    shard = finished / "results" / "data" / "text" / "shard0.train.parquet"
    st = shard.stat()
    shard.write_bytes(shard.read_bytes()[: st.st_size // 2])  # truncated, mtime kept: nothing upstream re-runs
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    target = forget_run(finished, "dense_none_main_s0")
    before = digests(finished, skip=("dense_none_main_s0", "shard0.train.parquet"))

    out, text = run_slurm(finished, site_profile, [target], SMOKE_STACK)
    assert out.returncode != 0
    assert len(failed_slurm_jobs(text)) == 1, text[-3000:]
    log = (finished / "logs" / "gated_attention" / "train_dense_none_main_s0.log").read_text()
    assert re.search(r"(corrupt token shard|does not match its checksum).*shard0\.train\.parquet", log), log[-2000:]
    assert digests(finished, skip=("dense_none_main_s0", "shard0.train.parquet")) == before


def test_truncated_checkpoint_fails_alone(finished, site_profile):
    bad = forget_run(finished, "dense_none_main_s0", keep_ckpt=True)
    newest = sorted((finished / RUNS / "dense_none_main_s0" / "ckpt").glob("step*"))[-1]
    states = next(newest.rglob("*model_states.pt"))
    states.write_bytes(states.read_bytes()[:100])
    good = forget_run(finished, "dense_none_main_s1")  # an unrelated job that must still run
    skip = ("dense_none_main_s0", "dense_none_main_s1")
    before = digests(finished, skip=skip)

    out, text = run_slurm(finished, site_profile, [bad, good], SMOKE_STACK)
    assert out.returncode != 0
    assert len(failed_slurm_jobs(text)) == 1, text[-3000:]
    log = (finished / "logs" / "gated_attention" / "train_dense_none_main_s0.log").read_text()
    assert "cannot load checkpoint file" in log and states.name in log, log[-2000:]
    assert read_parquet(finished / good).num_rows > 0
    assert digests(finished, skip=skip) == before


def test_missing_corpus_stops_the_dag_build_naming_the_key(slurm, site_profile, tmp_path):
    from cluster_support import write_config

    work = tmp_path / "work"
    missing = tmp_path / "no-such-corpus"
    cfg = write_config(work / "config.yaml", lambda c: c["data"]["text"].update(corpus=str(missing)))
    out, text = run_slurm(work, site_profile, ["results/data/text/manifest.json"], cfg)
    assert out.returncode != 0
    # The corpus files are declared inputs: a path that finds none stops the DAG build, before any job.
    assert not failed_slurm_jobs(text) and "data.text.corpus" in text and str(missing) in text, text[-3000:]


def test_global_batch_not_dividing_across_ranks_fails_naming_the_key(finished, site_profile):
    from cluster_support import write_config

    def two_ranks_odd_batch(c):
        c["studies"]["gated_attention"]["train"].update(batch_size=9, ranks_per_node=2)

    cfg = write_config(finished / "odd_batch.yaml", two_ranks_odd_batch)
    before = digests(finished, skip=("dense_none_main_s0",))
    out, text = run_slurm(finished, site_profile, [f"{RUNS}/dense_none_main_s0/metrics.parquet"], cfg)
    assert out.returncode != 0
    assert len(failed_slurm_jobs(text)) == 1, text[-3000:]
    log = (finished / "logs" / "gated_attention" / "train_dense_none_main_s0.log").read_text()
    assert "studies.gated_attention.train.batch_size=9" in log and "2 rank" in log, log[-2000:]
    assert digests(finished, skip=("dense_none_main_s0",)) == before


def test_missing_model_directory_stops_before_any_job(slurm, site_profile, tmp_path):
    """A model directory is checked when the DAG is built: nothing is submitted, the key is named."""
    from cluster_support import write_config

    work = tmp_path / "work"
    missing = tmp_path / "no-such-model"

    def point_at_missing(c):
        c["studies"]["hivemind"]["models"][0].update(kind="hf", path=str(missing))

    cfg = write_config(work / "config.yaml", point_at_missing)
    out, text = run_slurm(work, site_profile, ["hivemind"], cfg)
    assert out.returncode != 0
    assert "studies.hivemind.models" in text and str(missing) in text, text[-3000:]
    assert "SLURM jobid" not in text
