"""The rehearsal (config/presets/rehearsal.yaml on paper.yaml) shrinks the paper run without changing what it does.

What the overlay may change, leaf by leaf (the one rule, written once in `why_not_allowed`):
- a number or a list of numbers (steps, widths, depth lists, sizes, seeds, batch sizes, ranks), with
  two limits that keep the paper's code paths: a number keeps its sign (0 stays 0 and a positive stays
  positive: a KL coefficient, a skipped SFT, checkpointing), a count where 1 is special (ONE_IS_SPECIAL:
  expert parallelism, gradient accumulation) stays above 1 where the paper's is, and so do the ranks as
  a world size (nodes × ranks_per_node);
  `zero_stage` is a number but not a size: it never changes;
- `train.device` (the rehearsal runs on cpu) and `scale` (the label the claims table prints);
- a path to data (`*.path`, `data.text.corpus`) that ships: a file or folder in this repository, or
  the shipped corpus name `kjv`.
Every flag, algorithm, kind, precision, checker and decoding setting therefore stays the paper's.
"""
from __future__ import annotations

import numbers

import pytest
import yaml

from pipeline.config import load_config
from tests.conftest import PAPER, REHEARSAL, REPO, snakemake

SHIPPED_CORPORA = {"kjv"}
RANK_KEYS = ("nodes", "ranks_per_node")
ONE_IS_SPECIAL = ("ep_size", "grad_accum", "top_k")


def _leaves(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _lookup(config, path):
    for part in path:
        config = config[part]
    return config


def _is_number(v) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


def _regime(key: str, v) -> str:
    sign = "zero" if v == 0 else "negative" if v < 0 else "positive"
    return "above one" if key in ONE_IS_SPECIAL and v > 1 else sign


def _world(train: dict) -> int:
    return train.get("nodes", 1) * train.get("ranks_per_node", 1)


def why_not_allowed(path: tuple, paper_value, value, paper: dict, stacked: dict) -> str | None:
    """None when the rehearsal may set `path` to `value` (see the module docstring), else the reason."""
    key = path[-1]
    if path in (("train", "device"), ("scale",)):
        return None
    if key in ("path", "corpus"):
        if value in SHIPPED_CORPORA or (isinstance(value, str) and (REPO / value).exists()):
            return None
        return f"{value!r} is not data that ships with the repository"
    if key == "zero_stage":
        return "the ZeRO stage is the paper's code path, not a size"
    if isinstance(value, list) and all(_is_number(v) for v in value):
        return None
    if not _is_number(value):
        return f"{value!r} is not a number: only sizes, counts, the device and data paths may change"
    if paper_value is None:
        return None  # a limit where the paper has none
    if key in RANK_KEYS:
        parent = path[:-1]
        if (_world(_lookup(paper, parent)) > 1) != (_world(_lookup(stacked, parent)) > 1):
            return "the world size (nodes × ranks_per_node) must stay above 1 where the paper's is"
        return None
    if _is_number(paper_value) and _regime(key, paper_value) != _regime(key, value):
        return (f"{paper_value} → {value} leaves the paper's regime "
                f"({_regime(key, paper_value)} → {_regime(key, value)})")
    return None


def test_the_rehearsal_changes_nothing_but_sizes_the_device_and_data_paths():
    paper, stacked = load_config(PAPER), load_config(PAPER, REHEARSAL)
    bad = []
    for path, value in _leaves(yaml.safe_load(REHEARSAL.read_text())):
        try:
            paper_value = _lookup(paper, path)
        except (KeyError, TypeError):
            bad.append(f"{'.'.join(path)}: the paper preset has no such key")
            continue
        reason = why_not_allowed(path, paper_value, value, paper, stacked)
        if reason:
            bad.append(f"{'.'.join(path)}: {reason}")
    assert not bad, "the rehearsal overlay changes more than sizes:\n" + "\n".join(bad)
    assert stacked["train"]["device"] == "cpu"


@pytest.mark.parametrize("path, paper_value, value", [
    (("studies", "rlvr", "distill", "train", "precision"), "bf16", "fp32"),
    (("studies", "rlvr", "rl", "train", "zero_stage"), 2, 0),
    (("studies", "rlvr", "rl", "kl_coef"), 0.001, 0.0),
    (("studies", "rlvr", "base", "train", "steps"), 0, 10),
    (("studies", "gated_attention", "model", "ep_size"), 8, 1),
    (("studies", "rlvr", "task", "checker"), "last_number", "strict"),
    (("studies", "diffusion", "data", "path"), None, "/nowhere/celeba"),
])
def test_the_rule_refuses_what_changes_a_code_path(path, paper_value, value):
    paper = load_config(PAPER)
    assert why_not_allowed(path, paper_value, value, paper, paper)


def test_the_rule_refuses_one_rank_where_the_paper_has_many():
    paper = load_config(PAPER)
    one = load_config(PAPER)
    one["studies"]["gated_attention"]["train"].update(nodes=1, ranks_per_node=1)
    assert why_not_allowed(("studies", "gated_attention", "train", "nodes"), 2, 1, paper, one)


def test_the_rehearsal_keeps_the_paper_code_paths():
    """What issue 13 lists, read off the stacked config (the rule above keeps it; this names it)."""
    c = load_config(PAPER, REHEARSAL)["studies"]
    ga, rl = c["gated_attention"], c["rlvr"]
    assert ga["model"]["ep_size"] > 1 and _world(ga["train"]) % ga["model"]["ep_size"] == 0
    assert ga["train"]["precision"] == "bf16" and ga["train"]["zero_stage"] >= 1
    assert rl["rl"]["kl_coef"] > 0 and rl["model"]["kind"] == "hf" and rl["model"]["chat_template"]
    assert rl["distill"]["train"]["zero_stage"] == 2 and _world(rl["distill"]["train"]) > 1
    assert c["diffusion"]["model"]["kind"] == "unet" and c["diffusion"]["model"]["unet"]["attn_levels"]
    assert c["crl"]["env"]["maze"] == "bigmaze" and c["crl"]["width_control"]["enabled"]
    assert all(c[s]["enabled"] for s in ("gated_attention", "diffusion", "crl", "rlvr", "hivemind"))


STUDIES = ("gated_attention", "diffusion", "crl", "rlvr", "hivemind")


def test_the_rehearsal_runs_the_paper_pipeline_to_a_complete_claims_table(rehearsal_run):
    """Every study's claims and figures, and traces of the paper's code paths in what the jobs wrote."""
    import torch

    from pipeline.io import read_json, read_parquet

    results = rehearsal_run / "results"
    claims = read_parquet(results / "claims.parquet").to_pylist()
    assert {r["study"] for r in claims} == set(STUDIES)
    assert all(r["scale"].startswith("rehearsal") for r in claims)
    assert (results / "claims.md").stat().st_size > 0
    for study in STUDIES:
        assert list((results / study / "figures").glob("*.png")), study
    # the KL reference ran (a kl metric per step) and the HF base went through RL and distillation
    rl = read_parquet(results / "rlvr/models/grpo-s0/metrics.parquet")
    assert "kl" in rl.column_names and len(rl) == 2
    assert read_json(results / "rlvr/models/distill-s0/model.json")["kind"] == "hf"
    # expert parallelism: each of 2 ranks held 2 of the 4 experts; the exported weights hold all 4
    state = torch.load(results / "gated_attention/runs/moe_none_main_s0/weights/final.pt", weights_only=True)
    experts = {k.split("deepspeed_experts.")[1].split(".")[0] for k in state if "blocks.0." in k and "experts." in k}
    assert experts == {"0", "1", "2", "3"}
    again = snakemake(rehearsal_run, "-n", "--configfiles", str(PAPER), str(REHEARSAL))
    assert "Nothing to be done" in again.stdout + again.stderr
