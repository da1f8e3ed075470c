"""The claims rules on summary rows with known answers."""
import math

import pytest

from pipeline.studies.crl.analysis import claims
from pipeline.studies.crl.config import parse

ORACLE = 0.9


def rows_for(block, tag_by_net: dict[str, list[float]], hard_success=0.0, critic_accuracy=0.8):
    cfg = parse(block)
    out = []
    for net, values in tag_by_net.items():
        d, w = (int(x[1:]) for x in net.split("_"))
        kind = "width" if w != cfg.network.width else "depth"
        for seed, v in enumerate(values):
            out.append({"net": net, "depth": d, "width": w, "kind": kind, "matches": 16 if kind == "width" else 0,
                        "seed": seed, "agent_random_time_at_goal": v, "oracle_random_time_at_goal": ORACLE,
                        "agent_hard_time_at_goal": 0.0, "agent_hard_success_any": hard_success,
                        "oracle_hard_time_at_goal": 0.7, "critic_accuracy": critic_accuracy, "alpha": 0.05})
    return cfg, out


@pytest.fixture
def block(smoke_block):
    smoke_block["network"].update(width=64, depths=[4, 8, 16])
    smoke_block["width_control"].update(match_depths=[16])
    smoke_block["evaluation"]["episodes"] = 256  # the default's noise floor, 0.5/√256 per evaluation
    return smoke_block


def by_claim(result):
    return {c.claim: c for c in result}


def test_shallow_net_at_the_ceiling_is_inconclusive(block):
    cfg, rows = rows_for(block, {"d4_w64": [0.85, 0.86, 0.84], "d8_w64": [0.86, 0.85, 0.86],
                                 "d16_w64": [0.86, 0.86, 0.87], "d4_w126": [0.85, 0.86, 0.85]})
    c = by_claim(claims(cfg, rows, "test"))
    for name in ("time at goal grows with depth (random pairs)", "sharp jump at a critical depth",
                 "widening does not match deepening"):
        assert c[name].verdict == "inconclusive", name
        assert any(w in c[name].note for w in ("oracle", "did not itself improve", "min_jump_depths"))
    assert "no network of any depth reached the hard goal" in c["time at goal grows with depth (hard pair)"].note


def test_a_jump_at_one_depth_reproduces_all_three_claims(block):
    block["network"]["depths"] = [4, 8, 16, 32]
    cfg, rows = rows_for(block, {"d4_w64": [0.10, 0.12, 0.11], "d8_w64": [0.13, 0.12, 0.14],
                                 "d16_w64": [0.60, 0.65, 0.62], "d32_w64": [0.63, 0.66, 0.64],
                                 "d4_w126": [0.15, 0.13, 0.14]})
    c = by_claim(claims(cfg, rows, "test"))
    assert c["time at goal grows with depth (random pairs)"].verdict == "reproduced"
    jump = c["sharp jump at a critical depth"]
    assert jump.verdict == "reproduced" and "critical depth d16_w64" in jump.note
    assert c["widening does not match deepening"].verdict == "reproduced"


def test_gradual_gains_are_not_a_jump(block):
    """Equal steps: the largest exceeds the others by ~0; eight seeds resolve that below jump_min."""
    block["network"]["depths"] = [4, 8, 16, 32]
    block["seeds"] = list(range(8))
    noise = [0.0, 0.01, -0.01, 0.005, -0.005, 0.0, 0.01, -0.01]
    cfg, rows = rows_for(block, {f"d{d}_w64": [0.1 + 0.15 * i + e for e in noise] for i, d in enumerate((4, 8, 16, 32))}
                         | {"d4_w126": [0.1] * 8})
    jump = by_claim(claims(cfg, rows, "test"))["sharp jump at a critical depth"]
    assert jump.verdict == "not reproduced"


def test_three_depths_cannot_tell_a_jump_from_a_slope(block):
    cfg, rows = rows_for(block, {"d4_w64": [0.10, 0.12, 0.11], "d8_w64": [0.13, 0.12, 0.14],
                                 "d16_w64": [0.60, 0.65, 0.62], "d4_w126": [0.15, 0.13, 0.14]})
    jump = by_claim(claims(cfg, rows, "test"))["sharp jump at a critical depth"]
    assert jump.verdict == "inconclusive" and "min_jump_depths" in jump.note


def test_an_under_trained_critic_leaves_depth_claims_inconclusive(block):
    cfg, rows = rows_for(block, {"d4_w64": [0.30, 0.32, 0.31], "d8_w64": [0.3, 0.31, 0.3],
                                 "d16_w64": [0.25, 0.26, 0.24], "d4_w126": [0.3, 0.3, 0.3]}, critic_accuracy=0.11)
    c = by_claim(claims(cfg, rows, "test"))["time at goal grows with depth (random pairs)"]
    assert c.verdict == "inconclusive" and "under-trained" in c.note


def test_wide_net_matching_the_deep_one_is_not_reproduced(block):
    cfg, rows = rows_for(block, {"d4_w64": [0.10, 0.12, 0.11], "d8_w64": [0.3, 0.32, 0.31],
                                 "d16_w64": [0.50, 0.52, 0.51], "d4_w126": [0.74, 0.76, 0.75]})
    c = by_claim(claims(cfg, rows, "test"))["widening does not match deepening"]
    assert c.verdict == "not reproduced" and c.effect == pytest.approx(-0.24, abs=1e-6)


def test_a_diverged_run_makes_the_claim_inconclusive(block):
    cfg, rows = rows_for(block, {"d4_w64": [0.10, 0.12, 0.11], "d8_w64": [0.3, 0.32, 0.31],
                                 "d16_w64": [0.5, math.nan, 0.51], "d4_w126": [0.1, 0.1, 0.1]})
    c = by_claim(claims(cfg, rows, "test"))["time at goal grows with depth (random pairs)"]
    assert c.verdict == "inconclusive" and "non-finite" in c.note


def test_no_gain_from_depth_leaves_the_jump_inconclusive(block):
    block["network"]["depths"] = [4, 8, 16, 32]
    cfg, rows = rows_for(block, {"d4_w64": [0.50, 0.55, 0.52], "d8_w64": [0.53, 0.56, 0.51],
                                 "d16_w64": [0.51, 0.54, 0.53], "d32_w64": [0.52, 0.53, 0.52],
                                 "d4_w126": [0.5, 0.5, 0.5]})
    c = by_claim(claims(cfg, rows, "test"))
    jump = c["sharp jump at a critical depth"]
    assert jump.verdict == "inconclusive" and "no gain to come in a jump" in jump.note
    assert "nothing for widening to match" in c["widening does not match deepening"].note
