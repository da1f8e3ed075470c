"""Gated attention's claim rows beyond the one verdict table (tests/spine/test_verdicts.py): the
sink precondition's two criteria, and the loss rows' pairing over validation windows."""
import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import load_config
from pipeline.io import write_parquet
from pipeline.studies.gated_attention.analysis import build_claims, load_evals, window_noise
from pipeline.studies.gated_attention.evaluate import loss_rows, row

UNIFORM = 0.06
CFG = load_config("config/config.yaml")["studies"]["gated_attention"]
CFG = {**CFG, "ffns": ["dense"], "stress": {**CFG["stress"], "enabled": False}, "text": {**CFG["text"], "enabled": False}}
GATE = CFG["gate"]


def write_eval(path, first_token=0.08, sink_rate=0.67, bos_peak=1.0, losses=np.ones(4)):
    scalars = {"diverged": 0.0, "spikes": 0.0, "first_token_attn_mean": first_token,
               "first_token_attn_uniform": UNIFORM, "sink_rate": sink_rate, "bos_resid_peak": bos_peak,
               "bos_value_ratio_min": 0.5}
    rows = [row(k, v) for k, v in scalars.items()] + loss_rows("val_loss_x1", losses)
    rows += [row("first_token_attn_head", first_token, 0, h) for h in range(2)]
    write_parquet(pa.Table.from_pylist(rows), path)
    return str(path)


def claims(tmp_path, vanilla, gated):
    """vanilla/gated: per seed, write_eval's keyword arguments."""
    return {c.metric: c for c in claim_list(tmp_path, {"main": (vanilla, gated)})}


def claim_list(tmp_path, runs, cfg=CFG):
    """runs: regime → (vanilla, gated), each per seed write_eval's keyword arguments."""
    tmp_path.mkdir(exist_ok=True)
    paths = []
    for regime, (vanilla, gated) in runs.items():
        for gate, per_seed in (("none", vanilla), (GATE, gated)):
            for seed, values in enumerate(per_seed):
                paths.append(write_eval(tmp_path / f"dense_{gate}_{regime}_s{seed}.parquet", **values))
    return build_claims(load_evals(paths), cfg, "test")


def test_the_text_pair_judges_the_loss_claim(tmp_path):
    """With the text pair on, the one loss row is the text pair's: a gain there is found, and the main
    (synthetic) task's flat loss is not judged; with it off, the main task's flat loss is judged."""
    rng = np.random.default_rng(2)
    windows = 3.0 + rng.normal(0, 0.5, 64)
    losses = lambda shift: [dict(losses=windows + shift + rng.normal(0, 0.005, 64)) for _ in range(3)]  # noqa: E731
    runs = {"main": (losses(0.0), losses(0.0)), "text": (losses(0.0), losses(-0.05))}
    on = {**CFG, "text": {**CFG["text"], "enabled": True}}
    rows = [c for c in claim_list(tmp_path / "on", runs, on) if c.metric == "val_loss_x1"]
    assert len(rows) == 1 and "text pair" in rows[0].claim and rows[0].verdict == "reproduced", rows
    rows = [c for c in claim_list(tmp_path / "off", runs, CFG) if c.metric == "val_loss_x1"]
    assert len(rows) == 1 and "text pair" not in rows[0].claim and rows[0].verdict == "inconclusive", rows


def test_either_sink_criterion_suffices(tmp_path):
    # first-token attention barely above uniform, but Sink_1^0.3 (a few strong heads) meets its bar
    vanilla = [dict(first_token=0.08, sink_rate=0.67)] * 3
    gated = [dict(first_token=f, sink_rate=0.0) for f in (0.05, 0.04, 0.05)]
    assert claims(tmp_path, vanilla, gated)["first_token_attn_mean"].verdict == "reproduced"


def test_pairing_by_window_sees_a_gain_that_window_difficulty_hides(tmp_path):
    """A 0.02-nat gain, 64 windows whose difficulty varies by 0.5 nats: unpaired, each model's SE
    (0.06) would swamp it; paired window by window the difficulty cancels."""
    rng = np.random.default_rng(1)
    difficulty = 3.0 + rng.normal(0, 0.5, 64)
    vanilla, gated = [], []
    for seed in range(3):
        shift = rng.normal(0, 0.003)  # training noise of this seed
        vanilla.append(dict(losses=difficulty + shift + rng.normal(0, 0.005, 64)))
        gated.append(dict(losses=difficulty + shift - 0.02 + rng.normal(0, 0.005, 64)))
    rows = claims(tmp_path, vanilla, gated)
    loss = rows["val_loss_x1"]
    assert loss.verdict == "reproduced", loss
    floor, shared = window_noise(load_evals(sorted(map(str, tmp_path.glob("*.parquet")))), "dense", GATE, "main",
                                 ["val_loss_x1"])
    assert 0 < floor < 0.002 and 0 < shared < 0.002  # against 0.5 / √64 ≈ 0.06 unpaired
    assert "paired over 64 validation windows" in loss.note


def test_the_shared_windows_noise_does_not_average_out_over_seeds(tmp_path):
    """Twenty seeds agree exactly, but the gain lives in a few of 16 windows that every seed shares:
    the windows' sampling noise (SE 0.05) still bounds what the study can claim."""
    rng = np.random.default_rng(2)
    windows = 3.0 + rng.normal(0, 0.5, 16)
    delta = rng.normal(0, 0.2, 16)
    delta += -0.03 - delta.mean()  # exactly a 0.03-nat gain on these windows
    vanilla = [dict(losses=windows)] * 20
    gated = [dict(losses=windows + delta)] * 20
    loss = claims(tmp_path, vanilla, gated)["val_loss_x1"]
    assert loss.effect == pytest.approx(0.03) and loss.verdict == "inconclusive", loss


def test_models_scored_on_different_windows_are_an_error(tmp_path):
    paths = [write_eval(tmp_path / "dense_none_main_s0.parquet", losses=np.ones(4)),
             write_eval(tmp_path / f"dense_{GATE}_main_s0.parquet", losses=np.ones(5))]
    with pytest.raises(ValueError, match="val_loss_x1: seed 0 .* same validation windows"):
        window_noise(load_evals(paths), "dense", GATE, "main", ["val_loss_x1"])
