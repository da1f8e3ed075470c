"""Exactly what changed re-runs: checked by dry-runs against the finished smoke run.

A setting that changes no number (tracking, threads, where the checkout or the venv lives) must
leave "Nothing to be done"; a hyperparameter re-runs its jobs and their descendants, nothing else;
an edited file re-runs the jobs that read it and their descendants.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.config import load_config
from tests.conftest import REPO, SMOKE, job_counts, snakemake

pytestmark = pytest.mark.slow

GA_TAIL = {"ga_evaluate", "ga_analyse", "claims"}
DF_TAIL = {"diffusion_evaluate", "diffusion_analyse", "diffusion_figures", "claims"}
RL_TAIL = {"rlvr_evaluate", "rlvr_analyse", "rlvr_figures", "claims"}
HV_TAIL = {"hivemind_embed", "hivemind_analyse", "hivemind_figures", "claims"}
CRL_TAIL = {"crl_evaluate", "crl_analyse", "crl_figures", "claims"}


def smoke_value(dotted):
    node = load_config(SMOKE)
    for part in dotted.split("."):
        node = node[part]
    return node


# (dotted key, new value, {rule: expected count} for the rules that must re-run; None = only the set of rules)
CASES = [
    ("tracking.uri", "http://127.0.0.1:9", {}),
    ("tracking.enabled", False, {}),
    ("tracking.system_metrics", True, {}),
    ("tracking.live", True, {}),
    ("train.threads", 2, {}),
    # main and text pair (its train block is the main one with steps replaced): 8 + 4 runs; no tokenizer
    ("studies.gated_attention.train.lr", 0.002, {"ga_train": 12, **dict.fromkeys(GA_TAIL)}),
    ("studies.gated_attention.stress.lr", 0.06, {"ga_train": 4, **dict.fromkeys(GA_TAIL)}),
    ("studies.gated_attention.text.train.steps", 7, {"ga_train": 4, **dict.fromkeys(GA_TAIL)}),
    ("studies.gated_attention.eval.spike_factor", 2.0, {"ga_evaluate": 16, "ga_analyse": 1, "claims": 1}),
    ("studies.crl.algo.critic_lr", 1e-3, {"crl_train": 6, **dict.fromkeys(CRL_TAIL)}),
    ("studies.diffusion.train.lr", 2e-3, {"diffusion_train": 2, **dict.fromkeys(DF_TAIL)}),
    ("studies.rlvr.rl.kl_coef", 0.1, {"rlvr_rl": 2, **dict.fromkeys(RL_TAIL)}),
    ("studies.rlvr.eval.temperature", 0.7, {"rlvr_evaluate": None, "rlvr_analyse": 1, "rlvr_figures": 1, "claims": 1}),
    ("studies.hivemind.generation.max_new_tokens", 12, {"hivemind_generate": 1, **dict.fromkeys(HV_TAIL)}),
]


def set_key(cfg, dotted, value):
    *parents, leaf = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    assert leaf in node, dotted
    node[leaf] = value


def assert_reruns(dry, expected):
    counts = job_counts(dry.stdout)
    if not expected:
        assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-4000:]
        return
    assert set(counts) - {"all"} == set(expected), dry.stdout[-6000:]
    for rule, n in expected.items():
        if n is not None:
            assert counts[rule] == n, (rule, counts)


@pytest.mark.parametrize("dotted,value,expected", CASES, ids=[c[0] for c in CASES])
def test_a_changed_setting_reruns_exactly_its_jobs(smoke_run, tmp_path, dotted, value, expected):
    assert smoke_value(dotted) != value
    cfg = load_config(SMOKE)
    set_key(cfg, dotted, value)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert_reruns(snakemake(smoke_run, "--configfile", str(path), "-n"), expected)


def test_moving_the_checkout_and_the_venv_reruns_nothing(smoke_run, tmp_path):
    moved = tmp_path / "checkout"
    moved.mkdir()
    for part in ("Snakefile", "workflow", "config", "profiles"):
        src = REPO / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, moved / part)  # mv keeps mtimes; so do these
    venv = tmp_path / "venv"
    venv.symlink_to(Path(sys.executable).parents[1])
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "snakemake", "-s", str(moved / "Snakefile"),
                           "-d", str(smoke_run), f"--configfile={SMOKE}", "-n"],
                          capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert_reruns(proc, {})


def test_an_edited_file_reruns_its_readers_and_their_descendants(smoke_run, tmp_path):
    work = tmp_path / "wf"
    shutil.copytree(smoke_run, work, symlinks=True)  # copy2 keeps mtimes: the copy is as up to date as the run
    heldout = work / "results/rlvr/data/heldout.parquet"
    table = pq.read_table(heldout)
    pq.write_table(table.slice(0, table.num_rows - 1), heldout)  # an edit (a touch alone re-runs nothing: checksums)
    dry = snakemake(work, "--configfile", str(SMOKE), "-n")
    assert_reruns(dry, {"rlvr_evaluate": None, "rlvr_analyse": 1, "rlvr_figures": 1, "claims": 1})
