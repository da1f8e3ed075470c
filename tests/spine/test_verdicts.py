"""Every verdict earns its word: each claims row can fail, can pass, and says when it cannot form.

One table, one parametrised test. For every row a study emits, the study's own analysis (the
function its `analyse` rule calls) is fed synthetic per-run results of the shape its
evaluation jobs write, in three worlds: (a) the paper's claim is clearly false → never
`reproduced`; (b) it clearly holds → `reproduced`; (c) the row's precondition fails →
`inconclusive`, naming the precondition. The gated-attention sink and massive-activation rows
are covered with their own synthetic task elsewhere (issue 15).
"""
from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.io import write_parquet

DEFAULT = load_config("config/config.yaml")["studies"]


# --------------------------------------------------------------------------- RLVR
def _rlvr(tmp: Path, world: str) -> dict:
    from pipeline.studies.rlvr.analysis import run_analysis

    base = [8] * 30 + [4] * 6 + [0] * 4
    rl = [[40 + s] * 30 + [0] * 10 for s in range(3)]
    distill = [[20 + s] * 30 + [6] * 10 for s in range(3)]
    nll = {"base": 0.4, "rl": 0.25}
    if world == "rl_behind":
        rl = [[4 + s] * 30 + [0] * 10 for s in range(3)]
    if world == "rl_ahead_everywhere":
        rl = [[40 + s] * 30 + [10] * 6 + [5] * 4 for s in range(3)]
    if world == "rl_expands":  # RL loses base's hard problems and solves the ones base never does
        rl = [[40 + s] * 30 + [0] * 6 + [30] * 4 for s in range(3)]
        distill = [[20 + s] * 30 + [0] * 10 for s in range(3)]
    if world == "rl_unlikely":
        nll["rl"] = 0.6
    if world == "base_solves_all":
        base = [8] * 30 + [4] * 10
    if world == "base_solves_none":
        base = [0] * 40
    models = {"base": (base, nll["base"]), **{f"grpo-s{i}": (c, nll["rl"]) for i, c in enumerate(rl)},
              **{f"distill-s{i}": (c, 0.35) for i, c in enumerate(distill)}}
    counts, samples = {}, {}
    for name, (c, loss) in models.items():
        rng = np.random.default_rng(len(name))
        counts[name], samples[name] = str(tmp / f"{name}_c.parquet"), str(tmp / f"{name}_s.parquet")
        write_parquet([{"pid": f"p{i}", "klass": "easy" if i < 30 else "hard", "n": 64, "c": int(x)}
                       for i, x in enumerate(c)], counts[name])
        write_parquet([{"pid": f"p{i}", "base_logp": float(-4 * loss + rng.normal(0, 0.05)), "n_tokens": 4}
                       for i in range(len(c)) for _ in range(4)], samples[name])
    out = {k: str(tmp / f"{k}.parquet") for k in ("passk", "coverage", "perplexity", "claims")}
    return run_analysis(counts, samples, k_max=32, algorithms=["grpo"],
                        subset_threshold=DEFAULT["rlvr"]["analysis"]["subset_threshold"], scale="test", out=out)


# --------------------------------------------------------------------------- hivemind
HV_CFG = {**DEFAULT["hivemind"]["analysis"], "seed": 0, "embedder": DEFAULT["hivemind"]["embedding"]["model"],
          "threshold_embedder": DEFAULT["hivemind"]["embedding"]["model"], "random_pairs": 100}


def _hivemind(tmp: Path, world: str) -> list:
    from pipeline.studies.hivemind.analysis import run_analysis
    from tests.hivemind.test_analysis import _generations, _table

    spec = {"a@x": ("a", 0.3, False), "b@x": ("b", 0.3, False), "base@x": ("base", 1.0, False),
            "rl@x": ("rl", 0.3, False)}
    cfg, task = dict(HV_CFG), set()
    if world == "a_diverse":
        spec["a@x"] = ("a", 6.0, False)
    if world == "a_moderate":  # repeats (intra ≈ 0.5) but no prompt above 0.8
        spec["a@x"] = ("a", 1.0, False)
    if world == "b_own_answers":
        spec["b@x"] = ("b", 0.3, True)
    if world == "rl_more_diverse":
        spec["base@x"], spec["rl@x"] = ("base", 0.3, False), ("rl", 1.0, False)
    if world == "other_embedder":
        cfg["embedder"] = "some/other-embedder"
    if world == "task_prompts":
        task = {"base@x", "rl@x"}
    table = _table(spec, n_prompts=8, n=5)
    write_parquet(table, tmp / "emb.parquet")
    write_parquet(_generations(table, task=task), tmp / "gen.parquet")
    out = {k: str(tmp / f"{k}.out") for k in ("intra", "inter", "random_pairs", "summary", "claims")}
    return run_analysis(str(tmp / "emb.parquet"), [str(tmp / "gen.parquet")], out,
                        {**cfg, "rl_pairs": [{"base": "base@x", "rl": "rl@x"}]}, "test")


# --------------------------------------------------------------------------- gated attention
def _gated(tmp: Path, world: str) -> list:
    from pipeline.studies.gated_attention.analysis import build_claims, load_evals
    from pipeline.studies.gated_attention.evaluate import loss_rows, row

    ga = DEFAULT["gated_attention"]  # the RoPE presets' context multipliers, so the context row can form
    cfg = {**ga, "ffns": ["dense"], "eval": {**ga["eval"], "context_multipliers": [1, 2, 4]},
           "stress": {**ga["stress"], "enabled": True}}
    longest = max(cfg["eval"]["context_multipliers"])
    difficulty = np.random.default_rng(0).normal(0, 0.3, size=(2, 16))  # per validation window, shared by all models
    paths = []
    for seed in range(3):
        e, j = 0.01 * seed, 0.003 * seed**2  # j: the paired effect varies by seed, as real runs do
        runs = {"none": dict(x1=3.2 + e, beyond=4.5 + e, div=0.0, spikes=22 + seed, attn=0.20 + e, rate=0.67,
                             peak=40.0 + seed),
                "elementwise": dict(x1=3.0 + e, beyond=3.5 + e, div=0.0, spikes=0, attn=0.08 + e + j, rate=0.0,
                                    peak=5.0 + seed + 10 * j)}
        if world == "gate_worse":
            runs["elementwise"].update(x1=3.4 + e, beyond=5.6 + e, spikes=40 + seed, attn=0.30 + e + j, rate=1.0,
                                       peak=60.0 + seed + 10 * j)
        if world == "vanilla_diverged":
            runs["none"]["div"] = 1.0
        if world == "no_degradation":
            runs["none"]["beyond"] = runs["none"]["x1"]
        if world == "stable":
            runs["none"]["spikes"] = 0
        if world == "no_sink":
            runs["none"].update(attn=0.06 + e, rate=0.0)
        if world == "no_massive":
            runs["none"]["peak"] = 3.0 + seed
        for gate, r in runs.items():
            rng = np.random.default_rng([seed, len(gate)])
            for regime in ("main", "stress", "text"):  # the default judges the loss claim on the text pair
                rows = [("diverged", r["div"] if regime != "stress" else 0.0), ("spikes", r["spikes"] if regime == "stress" else 0),
                        ("first_token_attn_mean", r["attn"]), ("first_token_attn_uniform", 0.05),
                        ("sink_rate", r["rate"]), ("bos_resid_peak", r["peak"]), ("bos_value_ratio_min", 0.3)]
                rows = [row(m, v) for m, v in rows]
                for k, (metric, level) in enumerate((("val_loss_x1", r["x1"]), (f"val_loss_beyond_x{longest}", r["beyond"]))):
                    rows += loss_rows(metric, level + difficulty[k] + rng.normal(0, 0.01, difficulty.shape[1]))
                p = tmp / f"dense_{gate}_{regime}_s{seed}.parquet"
                write_parquet(rows, p)
                paths.append(str(p))
    return build_claims(load_evals(paths), cfg, "test")


# --------------------------------------------------------------------------- CRL
def _crl(tmp: Path, world: str) -> list:
    from pipeline.studies.crl.analysis import analyse
    from pipeline.studies.crl.config import networks, parse

    block = json.loads(json.dumps(DEFAULT["crl"]))
    block["network"]["depths"] = [4, 8, 16] if world == "three_depths" else [4, 8, 16, 32]
    nets = networks(parse(block))
    depth_of = {n["name"]: n["depth"] for n in nets if n["kind"] == "depth"}
    wide = next(n["name"] for n in nets if n["kind"] == "width")
    profile = {4: 0.10, 8: 0.12, 16: 0.60, 32: 0.63}  # a jump at 16
    if world == "gradual":
        profile = {4: 0.10, 8: 0.25, 16: 0.40, 32: 0.55}
    if world == "deeper_worse":
        profile = {4: 0.60, 8: 0.50, 16: 0.30, 32: 0.20}
    if world == "depth_flat":
        profile = {4: 0.40, 8: 0.41, 16: 0.40, 32: 0.41}
    wide_value = 0.75 if world == "wide_wins" else 0.14
    seeds = list(range(8)) if world == "gradual" else list(range(4))
    block["seeds"] = seeds
    dirs = []
    for n in nets:
        for s in seeds:
            d = tmp / f"{n['name']}_s{s}"
            d.mkdir()
            v = (wide_value if n["name"] == wide else profile[depth_of[n["name"]]]) + 0.005 * (s % 3 - 1)
            hard = 0.05 + 0.5 * (v > 0.5) if world != "no_hard_success" else 0.0
            (d / "run.json").write_text(json.dumps({"depth": n["depth"], "width": n["width"], "seed": s,
                                                    "params": {"total": n["params"]}, "env_steps": 1, "updates": 1,
                                                    "wall_s": 1.0, "diverged": False}))
            write_parquet([{"policy": "agent", "pairs": "random", "time_at_goal": v, "success_any": 1.0},
                           {"policy": "oracle", "pairs": "random", "time_at_goal": 0.9, "success_any": 1.0},
                           {"policy": "agent", "pairs": "hard", "time_at_goal": hard, "success_any": float(hard > 0)},
                           {"policy": "oracle", "pairs": "hard", "time_at_goal": 0.7, "success_any": 1.0}],
                          d / "eval.parquet")
            acc = 0.11 if world == "under_trained" else 0.8
            write_parquet([{"accuracy": acc, "alpha": 0.05, "train_time_at_goal": v, "train_success_any": 1.0}],
                          d / "metrics.parquet")
            dirs.append(d)
    return analyse(block, dirs, tmp / "summary.parquet", tmp / "claims.parquet", "test")


# --------------------------------------------------------------------------- diffusion
STEPS = [int(100 * 2 ** (k / 2)) for k in range(24)]


def _diffusion(tmp: Path, world: str) -> list:
    from pipeline.studies.diffusion.analysis import analyse

    cfg = json.loads(json.dumps(DEFAULT["diffusion"]))
    cfg["checkpoints"]["per_octave"] = 2
    mem_slope, gen_grows = (0.0 if world == "mem_flat" else -0.5 if world == "window_shrinks" else 1.0), world == "gen_grows"
    base = 8000.0 if world == "window_shrinks" else 2000.0
    rows = []
    for n in (8, 16, 32):
        for s in (0, 1):
            onset = base * (n / 8) ** mem_slope * (1 + 0.03 * s)
            tau_fd = 20 * n if gen_grows else 300
            for step in STEPS:
                f = 0.0 if (world == "never_memorises" or step < onset) else min(1.0, (step - onset) / onset)
                fd = 50 * math.exp(-step / tau_fd) + 3 + 0.01 * s
                if world == "fd_never_improves":
                    fd = 3 + step / 1000
                loss = -step if world == "no_loss_min" else (math.log(step) - math.log(onset / 4)) ** 2
                rows.append({"n": n, "seed": s, "step": step, "f_mem": f, "fd": fd, "loss_heldout": loss})
    write_parquet(rows, tmp / "evals_in.parquet")
    rf = cfg["random_features"]
    times = np.geomspace(rf["time_min"], rf["time_max"], rf["n_times"])
    curves = []
    for n in rf["sizes"]:
        for s in rf["seeds"]:
            for t in times:
                rise = t / (50 * n) if world != "rf_gap_flat" else t / 50
                gap = 0.0 if world == "rf_never_departs" else 0.2 * min(1.0, rise) * (1 + 0.01 * s)
                tg = 300 * n if world == "rf_gen_grows" else 300
                test = 2.0 + t / 1e6 if world == "rf_test_rises" else 1 + math.exp(-t / tg)
                curves.append({"n": n, "seed": s, "time": float(t), "test_loss": test, "gap": gap})
    write_parquet(curves, tmp / "rf.parquet")
    out = {k: str(tmp / f"{k}.parquet") for k in ("evals", "timescales", "fits", "claims", "rf_timescales")}
    return analyse(eval_rows=[tmp / "evals_in.parquet"], rf_curves=tmp / "rf.parquet", cfg=cfg, scale="test", out=out)


STUDIES = {"rlvr": _rlvr, "hivemind": _hivemind, "gated_attention": _gated, "crl": _crl, "diffusion": _diffusion}


@functools.lru_cache(maxsize=None)
def claims_in(study: str, world: str, tmp_root: str) -> dict:
    tmp = Path(tmp_root) / f"{study}-{world}"
    tmp.mkdir(parents=True)
    return {c.claim: c for c in STUDIES[study](tmp, world)}


# (study, row: a prefix of the claim, world where the claim is false, world where it holds,
#  world where its precondition fails, words naming that precondition)
ROWS = [
    ("rlvr", "grpo: RL beats base at k=1", "rl_behind", "holds", "base_solves_none", "base must solve some"),
    ("rlvr", "grpo: base catches up", "rl_ahead_everywhere", "holds", "rl_behind", "RL does not lead at k=1"),
    ("rlvr", "grpo: problems solved by RL are nearly a subset", "rl_expands", "holds", "base_solves_all", "trivially"),
    ("rlvr", "grpo: base model assigns RL responses", "rl_unlikely", "holds", "base_solves_none", "base must solve some"),
    ("rlvr", "distillation expands coverage", "rl_expands", "holds", "base_solves_all", "trivially"),
    ("hivemind", "a@x repeats itself", "a_diverse", "holds", "other_embedder", "recalibrate"),
    ("hivemind", "a@x: most prompts", "a_moderate", "holds", "other_embedder", "do not transfer"),
    ("hivemind", "a@x and b@x converge", "b_own_answers", "holds", "a_diverse", "shows no repetition"),
    ("hivemind", "RL-trained model is less diverse", "rl_more_diverse", "holds", "task_prompts", "task prompts"),
    ("gated_attention", "lower validation loss", "gate_worse", "holds", "vanilla_diverged", "vanilla run diverged"),
    ("gated_attention", "smaller loss increase beyond the training length", "gate_worse", "holds", "no_degradation",
     "does not rise beyond the training length"),
    ("gated_attention", "fewer loss spikes", "gate_worse", "holds", "stable", "neither spiked nor diverged"),
    ("gated_attention", "less attention on the first token", "gate_worse", "holds", "no_sink", "formed no attention sink"),
    ("gated_attention", "smaller massive activation", "gate_worse", "holds", "no_massive", "no massive activation"),
    ("crl", "time at goal grows with depth (random pairs)", "deeper_worse", "holds", "under_trained", "under-trained"),
    ("crl", "time at goal grows with depth (hard pair)", "deeper_worse", "holds", "no_hard_success",
     "reached the hard goal"),
    ("crl", "sharp jump", "gradual", "holds", "three_depths", "min_jump_depths"),
    ("crl", "widening does not match deepening", "wide_wins", "holds", "depth_flat", "nothing for widening to match"),
    ("diffusion", "tau_gen is roughly independent of n", "gen_grows", "holds", "fd_never_improves", "quality plateau"),
    ("diffusion", "tau_mem grows linearly with n", "mem_flat", "holds", "never_memorises", "memorisation"),
    ("diffusion", "the generalisation window", "window_shrinks", "holds", "never_memorises", "memorisation"),
    ("diffusion", "tau_mem grows linearly with n (held-out", "mem_flat", "holds", "no_loss_min", "held-out loss minimum"),
    ("diffusion", "random-features model: tau_mem", "rf_gap_flat", "holds", "rf_never_departs", "gap"),
    ("diffusion", "random-features model: tau_gen", "rf_gen_grows", "holds", "rf_test_rises", "plateau"),
]
CASES = [pytest.param(study, row, world, kind, words, id=f"{study}:{row}:{kind}")
         for study, row, false, holds, pre, words in ROWS
         for kind, world in (("false", false), ("holds", holds), ("precondition", pre))]


def _row(claims: dict, prefix: str):
    if prefix in claims:
        return claims[prefix]
    hits = [c for name, c in claims.items() if name.startswith(prefix)]
    assert len(hits) == 1, f"{prefix!r} matches {sorted(claims)}"
    return hits[0]


@pytest.mark.parametrize(("study", "row", "world", "kind", "words"), CASES)
def test_every_claim_can_fail_pass_and_name_its_precondition(study, row, world, kind, words, tmp_path_factory):
    c = _row(claims_in(study, world, str(tmp_path_factory.getbasetemp())), row)
    if kind == "false":
        assert c.verdict != "reproduced", c
    elif kind == "holds":
        assert c.verdict == "reproduced", c
        assert math.isfinite(c.mde) and c.mde > 0, c
    else:
        assert c.verdict == "inconclusive" and "precondition failed" in c.note and words in c.note, c


def test_the_table_covers_every_row_the_studies_emit(tmp_path_factory):
    """A new claims row without a line in ROWS fails here.
    Per-generator rows count as one kind of row: generator names are normalised away."""

    def kind(name: str) -> str:
        return re.sub(r"[\w.-]+@x", "G", name)

    for study in STUDIES:
        names = claims_in(study, "holds", str(tmp_path_factory.getbasetemp()))
        covered = [kind(r) for s, r, *_ in ROWS if s == study]
        for name in names:
            assert any(kind(name).startswith(r) for r in covered), f"{study}: {name!r} has no row in ROWS"
