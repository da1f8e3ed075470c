"""pipeline.stats: intervals never claim certainty they do not have, and 'needs ~N' means it."""
import math

import numpy as np
import pytest

from pipeline.stats import (bootstrap_interval, decide, slope_interval, t_interval, units_needed,
                            welch_interval)


def test_the_noise_floor_keeps_identical_runs_from_a_zero_width_interval():
    iv = t_interval([0.5, 0.5, 0.5], floor=0.02)
    assert iv.high - iv.low == pytest.approx(2 * 4.303 * 0.02 / math.sqrt(3), rel=1e-3)
    assert welch_interval([1, 1], [0, 0], floor=0.1).high > welch_interval([1, 1], [0, 0], floor=0.1).low
    line, _ = slope_interval([0, 1, 2, 3], [0, 1, 2, 3], floor=0.1)
    assert line.estimate == pytest.approx(1.0) and line.high - line.low > 0.1


def test_seeds_needed_is_the_design_that_would_resolve_the_effect():
    """An inconclusive effect's 'needs ~N seeds', run with N seeds at the same spread, has an
    MDE no larger than the effect itself."""
    effects = [0.10, -0.02, 0.14]
    iv = t_interval(effects, floor=0.0)
    verdict, why = decide(iv)
    n = units_needed(iv)
    assert verdict == "inconclusive" and f"~{n} seeds" in why
    sd = float(np.std(effects, ddof=1))
    bigger = t_interval([float(np.mean(effects))] * n, floor=sd)  # n seeds at the same spread (the floor)
    assert bigger.mde <= iv.estimate * 1.05 and decide(bigger)[0] == "reproduced"


def test_a_shared_baseline_error_widens_a_bootstrap_interval():
    x = np.linspace(0.4, 0.6, 30)
    plain = bootstrap_interval(lambda i: float(x[i].mean()), x.size, seed=0)
    shared = bootstrap_interval(lambda i: float(x[i].mean()), x.size, seed=0, shared_se=0.05)
    assert shared.low < plain.low and shared.high > plain.high and shared.mde > plain.mde


def test_a_diverged_run_is_not_dropped():
    iv = t_interval([0.1, math.nan, 0.2], floor=0.0)
    assert decide(iv)[1].startswith("non-finite")
