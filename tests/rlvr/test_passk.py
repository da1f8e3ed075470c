"""pass@k: the unbiased estimator against brute-force enumeration and its edge cases."""
import itertools
import math

import numpy as np
import pytest

from pipeline.metrics.passk import pass_at_k, pass_at_k_curve, powers_of_two


def enumerate_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (c correct) that contain a correct one."""
    correct = set(range(c))
    subsets = list(itertools.combinations(range(n), k))
    return sum(bool(correct & set(s)) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_matches_exact_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(enumerate_pass_at_k(n, c, k), abs=1e-12)


def test_vectorised_over_problems_matches_scalar_calls():
    rng = np.random.default_rng(0)
    n = rng.integers(4, 40, size=50)
    c = rng.integers(0, n + 1)
    got = pass_at_k(n, c, 3)
    want = [1 - math.comb(int(ni - ci), 3) / math.comb(int(ni), 3) for ni, ci in zip(n, c)]
    assert got.shape == (50,)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_zero_when_nothing_correct_and_one_when_failures_fewer_than_k():
    assert pass_at_k(64, 0, 1) == 0.0
    assert pass_at_k(64, 0, 64) == 0.0
    assert pass_at_k(10, 8, 3) == 1.0  # n - c = 2 < 3
    assert pass_at_k(10, 10, 1) == 1.0
    assert np.all(pass_at_k([5, 5, 5], [0, 3, 5], [5, 5, 5]) == [0.0, 1.0, 1.0])


def test_monotone_in_k():
    n = 256
    for c in (1, 3, 40, 200):
        curve = pass_at_k_curve([n], [c], range(1, n + 1))[:, 0]
        assert np.all(np.diff(curve) >= -1e-15), c
        assert curve[0] == pytest.approx(c / n)


def test_no_overflow_at_n_1024():
    n = 1024
    c = np.arange(0, n + 1)
    for k in (1, 2, 17, 256, 512, 1024):
        got = pass_at_k(np.full_like(c, n), c, k)
        assert np.all(np.isfinite(got)) and np.all((got >= 0) & (got <= 1))
        exact = [1 - math.comb(n - ci, k) / math.comb(n, k) for ci in (1, 5, 300)]
        np.testing.assert_allclose(got[[1, 5, 300]], exact, rtol=1e-10, atol=1e-14)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="k must be ≤ n"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="0 ≤ c ≤ n"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="k must be ≥ 1"):
        pass_at_k(4, 1, 0)
    with pytest.raises(ValueError, match="integers"):
        pass_at_k(4.5, 1, 1)


def test_powers_of_two():
    assert powers_of_two(1) == [1]
    assert powers_of_two(64) == [1, 2, 4, 8, 16, 32, 64]
    assert powers_of_two(48)[-1] == 48
