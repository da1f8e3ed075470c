"""Timescales from curves, log-log fits and the claims rules, on synthetic curves."""
import math

import numpy as np
import pyarrow as pa
import pytest

from pipeline.claims import VERDICTS
from pipeline.studies.diffusion.analysis import (
    build_claims, first_crossing, loglog_fit, tau_gen, tau_loss_min, tau_mem, timescales,
)

CFG = {"thresholds": {"mem_fraction": 0.1, "gen_tolerance": 0.1, "min_sizes": 3, "flat_tolerance": 0.3,
                      "slope_tolerance": 0.5}, "checkpoints": {"per_octave": 2}}
STEPS = [int(100 * 2 ** (k / 2)) for k in range(16)]


def test_first_crossing_interpolates_in_log_steps():
    assert first_crossing([100, 400], [0.0, 0.2], 0.1) == pytest.approx(200.0)
    assert first_crossing([100, 200], [0.3, 0.5], 0.1) == 100.0
    assert math.isnan(first_crossing([100, 200], [0.0, 0.05], 0.1))
    assert first_crossing([100, 200, 400], [5.0, 3.0, 1.0], 2.0, above=False) == pytest.approx(200 * 2**0.5)
    assert first_crossing([100, 200, 400], [0.0, float("nan"), 0.4], 0.2) == pytest.approx(200.0)


def test_tau_gen_tau_mem_and_the_loss_minimum():
    fd = [100 * math.exp(-s / 500) + 5 for s in STEPS]  # plateau after a few hundred steps
    tg = tau_gen(STEPS, fd, 0.1)
    assert 500 < tg < 2000
    fm = [0.0 if s < 3000 else min(1.0, (s - 3000) / 3000) for s in STEPS]
    assert 3000 < tau_mem(STEPS, fm, 0.1) < 4000
    # a parabola in log step with its vertex at 300 is found between the checkpoints
    loss = [(math.log(s) - math.log(300)) ** 2 + 1 for s in (100, 200, 400, 800)]
    assert tau_loss_min([100, 200, 400, 800], loss) == pytest.approx(300, rel=1e-6)
    assert math.isnan(tau_loss_min([1, 2, 4, 8], [4.0, 3.0, 2.0, 1.0]))  # not turned up yet
    assert math.isnan(tau_loss_min([1, 2, 4, 8], [1.0, 3.0, 4.0, 5.0]))  # minimum not bracketed
    assert math.isnan(tau_gen(STEPS, sorted(fd), 0.1))  # quality never improved
    # FD that keeps falling once samples copy training images: the plateau is read before that
    late = [f - (40 if s > 5000 else 0) for f, s in zip(fd, STEPS)]
    assert tau_gen(STEPS, late, 0.1, [s <= 5000 for s in STEPS]) == pytest.approx(tg, rel=0.01)


def test_loglog_fit_recovers_a_power_law():
    rng = np.random.default_rng(0)
    n = np.repeat([16, 32, 64, 128], 3)
    fit = loglog_fit(n, 50 * n**1.0 * np.exp(rng.normal(scale=0.05, size=n.size)))
    assert fit.slope == pytest.approx(1.0, abs=0.1) and fit.ci_low < 1.0 < fit.ci_high
    assert fit.points == 12 and fit.sizes == 4
    assert math.isnan(loglog_fit([16, 16], [1.0, 2.0]).slope)


def synthetic_evals(mem_slope: float, sizes=(8, 16, 32), seeds=(0, 1), censor=(), base=400.0):
    rows = []
    for n in sizes:
        for s in seeds:
            onset = base * n**mem_slope * (1 + 0.03 * s)
            for step in STEPS:
                f = 0.0 if (n in censor or step < onset) else min(1.0, (step - onset) / onset)
                rows.append({"n": n, "seed": s, "step": step, "f_mem": f, "fd": 50 * math.exp(-step / 300) + 3 + 0.01 * s,
                             "loss_heldout": (math.log(step) - math.log(onset / 4)) ** 2})
    return pa.Table.from_pylist(rows)


def claims_of(evals):
    return {c.claim: c for c in build_claims(timescales(evals, CFG["thresholds"]), None, CFG, "test")}


def test_claims_reproduced_when_tau_mem_is_linear_and_tau_gen_flat():
    claims = claims_of(synthetic_evals(1.0))
    assert claims["tau_mem grows linearly with n"].verdict == "reproduced"
    assert claims["tau_mem grows linearly with n"].value == pytest.approx(1.0, abs=0.1)
    assert claims["tau_gen is roughly independent of n"].verdict == "reproduced"
    assert claims["the generalisation window [tau_gen, tau_mem] widens with n"].verdict == "reproduced"
    assert claims["tau_mem grows linearly with n (held-out loss minimum as the estimate)"].verdict == "reproduced"
    assert all(c.verdict in VERDICTS and c.n_seeds == 6 for c in claims.values())  # n: (size, seed) points


def test_claims_not_reproduced_when_tau_mem_is_flat():
    claims = claims_of(synthetic_evals(0.0))
    assert claims["tau_mem grows linearly with n"].verdict == "not reproduced"
    window = "the generalisation window [tau_gen, tau_mem] widens with n"
    assert claims[window].verdict == "inconclusive"  # a flat window: the slope's CI straddles 0
    assert claims_of(synthetic_evals(-0.5, base=8000))[window].verdict == "not reproduced"


def test_inconclusive_with_the_reason_when_memorisation_is_not_reached():
    claims = claims_of(synthetic_evals(1.0, censor=(32,)))
    c = claims["tau_mem grows linearly with n"]
    assert c.verdict == "inconclusive"
    assert "precondition failed" in c.note and "n=[32]" in c.note
    assert claims["the generalisation window [tau_gen, tau_mem] widens with n"].verdict == "inconclusive"


def test_a_super_linear_tau_mem_with_a_censored_size_is_not_reproduced():
    """The censored size enters at its budget, a lower bound: even that slope is above the band."""
    claims = claims_of(synthetic_evals(2.5, sizes=(4, 8, 16, 32), base=5.0))  # n=32 never memorises
    c = claims["tau_mem grows linearly with n"]
    assert "censored" in c.metric and c.verdict == "not reproduced", c
