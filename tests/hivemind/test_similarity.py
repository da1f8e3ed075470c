"""The similarity metrics against direct numpy computations."""
import itertools
import math

import numpy as np
import pytest

from pipeline.metrics.similarity import (cosine_matrix, mean_cross_cosine, mean_pairwise_cosine,
                                         random_pair_cosines, share_above)


def _cos(u, v):
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


@pytest.mark.parametrize("n,dim", [(2, 3), (5, 8), (17, 32)])
def test_mean_pairwise_matches_a_loop_over_the_upper_triangle(n, dim):
    x = np.random.default_rng(n).normal(size=(n, dim))
    direct = np.mean([_cos(x[i], x[j]) for i, j in itertools.combinations(range(n), 2)])
    assert mean_pairwise_cosine(x) == pytest.approx(direct, abs=1e-12)


@pytest.mark.parametrize("na,nb", [(1, 1), (3, 7), (10, 4)])
def test_mean_cross_matches_a_loop_over_all_cross_pairs(na, nb):
    rng = np.random.default_rng(na * 10 + nb)
    a, b = rng.normal(size=(na, 6)), rng.normal(size=(nb, 6))
    direct = np.mean([_cos(u, v) for u in a for v in b])
    assert mean_cross_cosine(a, b) == pytest.approx(direct, abs=1e-12)
    assert np.allclose(cosine_matrix(a, b), [[_cos(u, v) for v in b] for u in a])


def test_identical_responses_give_one():
    v = np.random.default_rng(0).normal(size=(1, 16))
    same = np.repeat(v, 5, axis=0) * np.arange(1, 6)[:, None]  # positive rescaling keeps direction
    assert mean_pairwise_cosine(same) == pytest.approx(1.0)
    assert mean_cross_cosine(same[:2], same[2:]) == pytest.approx(1.0)


def test_degenerate_sets():
    assert math.isnan(mean_pairwise_cosine(np.ones((1, 4))))
    assert math.isnan(mean_cross_cosine(np.zeros((0, 4)), np.ones((2, 4))))
    with pytest.raises(ValueError, match="zero vector"):
        mean_pairwise_cosine(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="widths differ"):
        mean_cross_cosine(np.ones((2, 3)), np.ones((2, 4)))


def test_share_above_counts_strictly_greater_and_brackets_the_share():
    vals = [0.1, 0.5, 0.81, 0.9, 0.8, float("nan")]
    share, lo, hi = share_above(vals, 0.8, seed=1)
    assert share == pytest.approx(2 / 5)
    assert 0.0 <= lo <= share <= hi <= 1.0
    assert share_above([0.9, 0.95], 0.8) == (1.0, 1.0, 1.0)
    assert all(math.isnan(x) for x in share_above([], 0.8))


def test_random_pairs_never_pair_within_a_group():
    # Vectors of one group are identical, different groups orthogonal: any within-group
    # pair would score 1.0, any cross-group pair 0.0.
    groups = np.repeat(np.arange(4), 3)
    emb = np.eye(4)[groups]
    cos = random_pair_cosines(emb, groups, 500, seed=0)
    assert cos.shape == (500,) and np.allclose(cos, 0.0)
    other = np.eye(4)[groups]
    assert np.allclose(random_pair_cosines(emb, groups, 50, other=other, other_groups=groups), 0.0)
    with pytest.raises(ValueError, match="two different groups"):
        random_pair_cosines(emb[:3], groups[:3], 10)
