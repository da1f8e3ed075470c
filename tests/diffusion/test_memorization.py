"""memorization_fraction: the nearest-neighbour ratio test, its CI, and its bounded memory."""
import numpy as np
import pytest
import torch

from pipeline.metrics import memorization as mem
from pipeline.metrics.memorization import memorization_fraction, nearest_two


def brute_force(samples: np.ndarray, train: np.ndarray, ratio: float) -> float:
    """Plain float64 loops: the definition, with nothing clever."""
    flags = []
    for s in samples.reshape(len(samples), -1).astype(np.float64):
        d = sorted(np.sqrt(((train.reshape(len(train), -1) - s) ** 2).sum(axis=1)))
        flags.append(d[0] == 0 or d[0] < ratio * d[1])
    return float(np.mean(flags))


def test_training_images_are_exactly_memorised():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(50, 1, 8, 8, generator=g)
    train = torch.cat([train, train[:3]])  # duplicated images (d1 = d2 = 0) still count as copies
    frac, lo, hi = memorization_fraction(train[torch.randperm(len(train), generator=g)], train)
    assert (frac, lo, hi) == (1.0, 1.0, 1.0)


def test_fresh_samples_from_another_distribution_are_not_memorised():
    g = torch.Generator().manual_seed(1)
    train = torch.rand(200, 64, generator=g)
    samples = torch.randn(300, 64, generator=g) * 3 + 5
    frac, lo, hi = memorization_fraction(samples, train)
    assert frac < 0.01 and hi < 0.03


@pytest.mark.parametrize("ratio", [1 / 3, 0.6, 0.9])
def test_agrees_with_brute_force(ratio):
    rng = np.random.default_rng(2)
    train = rng.normal(size=(120, 16)).astype(np.float32)
    # a mix: near copies (noisy training images) and fresh points
    near = train[rng.integers(0, 120, 60)] + rng.normal(scale=0.3, size=(60, 16)).astype(np.float32)
    fresh = rng.normal(size=(60, 16)).astype(np.float32)
    samples = np.concatenate([near, fresh])
    frac, _, _ = memorization_fraction(samples, train, ratio=ratio)
    assert 0 < frac < 1
    assert frac == pytest.approx(brute_force(samples, train, ratio), abs=1e-12)


def test_chunked_and_unchunked_agree():
    g = torch.Generator().manual_seed(3)
    train = torch.randn(333, 20, generator=g)
    samples = torch.cat([train[:50] + 0.2 * torch.randn(50, 20, generator=g), torch.randn(77, 20, generator=g)])
    whole = nearest_two(samples, train, chunk=None)
    for chunk in (1, 7, 64, 1000):
        part = nearest_two(samples, train, chunk=chunk)
        torch.testing.assert_close(part.d1, whole.d1)
        torch.testing.assert_close(part.d2, whole.d2)
        assert torch.equal(part.idx1, whole.idx1)
    assert memorization_fraction(samples, train, chunk=5)[0] == memorization_fraction(samples, train, chunk=None)[0]


def test_distance_blocks_never_exceed_the_chunk(monkeypatch):
    seen = []
    real = torch.cdist

    def spy(a, b, *args, **kwargs):
        seen.append((a.shape[0], b.shape[0]))
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(mem.torch, "cdist", spy)
    train, samples = torch.randn(500, 8), torch.randn(300, 8)
    nearest_two(samples, train, chunk=64)
    assert seen and max(max(s) for s in seen) <= 64
    assert sum(b for a, b in seen if a == seen[0][0]) >= 500  # every training row was visited


def test_nearest_index_and_exact_distances():
    train = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 3.0]])
    samples = torch.tensor([[0.0, 0.1], [9.0, 0.0]])
    nb = nearest_two(samples, train)
    assert nb.idx1.tolist() == [0, 1]
    torch.testing.assert_close(nb.d1, torch.tensor([0.1, 1.0]))
    torch.testing.assert_close(nb.d2, torch.tensor([2.9, 9.0]))


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded():
    g = torch.Generator().manual_seed(4)
    train = torch.randn(40, 10, generator=g)
    samples = torch.cat([train[:30], torch.randn(70, 10, generator=g)])
    frac, lo, hi = memorization_fraction(samples, train, seed=5)
    assert frac == pytest.approx(0.3)
    assert lo < frac < hi and hi - lo < 0.25
    assert memorization_fraction(samples, train, seed=5) == (frac, lo, hi)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="values per image"):
        memorization_fraction(torch.zeros(3, 4), torch.zeros(5, 6))
    with pytest.raises(ValueError, match="ratio"):
        memorization_fraction(torch.zeros(3, 4), torch.zeros(5, 4), ratio=0)
    with pytest.raises(ValueError, match="train is empty"):
        nearest_two(torch.zeros(3, 4), torch.zeros(0, 4))
