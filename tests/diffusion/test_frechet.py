"""frechet_distance: zero on identical sets, symmetric, grows with a mean shift, matches the
closed form for Gaussians with commuting covariances."""
import numpy as np
import pytest

from pipeline.metrics.frechet import frechet_distance


def feats(seed, n=500, d=6, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))
    return rng.normal(size=(n, d)) @ mix * scale + shift


def test_zero_for_identical_sets():
    a = feats(0)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_symmetric():
    a, b = feats(0), feats(1, scale=1.7)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)


def test_grows_with_a_mean_shift():
    a = feats(0)
    values = [frechet_distance(a, a + s) for s in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] < 1e-8
    # a pure shift adds exactly |shift|^2 per dimension
    assert values[3] == pytest.approx(4.0 * a.shape[1], rel=1e-8)


def test_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(3)
    va, vb = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 1.0])
    a = rng.normal(size=(20000, 3)) * np.sqrt(va)
    b = rng.normal(size=(20000, 3)) * np.sqrt(vb) + 1.0
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # reference via scipy's matrix square root
    from scipy.linalg import sqrtm
    ref = ((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * np.real(sqrtm(ca @ cb)))
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)
    # and the population value it estimates: 3 + sum (sqrt va - sqrt vb)^2
    assert frechet_distance(a, b) == pytest.approx(3 + ((np.sqrt(va) - np.sqrt(vb)) ** 2).sum(), rel=0.05)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="feats_a"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(np.zeros((4, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((4, 3), np.nan), np.zeros((5, 3)))
