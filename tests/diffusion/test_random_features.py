"""The random-features model: the closed-form gradient flow and its two timescales."""
import numpy as np
import pytest

from pipeline.studies.diffusion.analysis import rf_timescales
from pipeline.studies.diffusion.random_features import dsm_loss, features, flow_solution, rf_curves

CFG = {"d": 4, "p": 256, "t": 0.05, "noise_draws": 8, "n_test": 2000, "sizes": [16, 32], "seeds": [0],
       "time_min": 1.0, "time_max": 1e7, "n_times": 29, "gap_thresholds": [0.1], "seed": 0}


@pytest.mark.parametrize("wide", [True, False])  # N < p (Gram path) and N > p (feature path)
def test_closed_form_matches_explicit_gradient_descent(wide):
    rng = np.random.default_rng(0)
    d, p, n = 3, 40 if wide else 8, 12
    delta = 1 - np.exp(-0.2)
    W = rng.normal(size=(p, d))
    xi = rng.normal(size=(n, d))
    F = features(W, 0.9 * rng.normal(size=(n, d)) + np.sqrt(delta) * xi)
    lr, steps = 0.05, 40000  # Euler steps of the flow, small enough to track it
    A = np.zeros((d, p))
    U, V = F.T @ F / n, F.T @ xi / n
    for _ in range(steps):
        A -= lr * (2 / d) * (delta * A @ U + np.sqrt(delta) * V.T)
    (tau, B, Q), = list(flow_solution(F, xi, delta, np.array([lr * steps])))
    np.testing.assert_allclose(B @ Q.T, A, rtol=2e-3, atol=1e-6)
    assert dsm_loss(F @ Q, B, xi, delta) == pytest.approx(((np.sqrt(delta) * F @ A.T + xi) ** 2).mean(), rel=1e-3)


def test_curves_start_at_the_noise_level_and_training_loss_only_falls():
    table = rf_curves(CFG).to_pylist()
    for n in CFG["sizes"]:
        rows = sorted((r for r in table if r["n"] == n), key=lambda r: r["time"])
        train = np.array([r["train_loss"] for r in rows])
        test = np.array([r["test_loss"] for r in rows])
        assert train[0] == pytest.approx(1.0, abs=0.1) and test[0] == pytest.approx(1.0, abs=0.1)
        assert np.all(np.diff(train) <= 1e-9)  # gradient flow on the training loss
        assert test.min() < test[0] - 0.05  # it generalises first ...
        assert test[-1] > test.min() + 0.05  # ... and overfits later


def test_memorisation_comes_later_for_larger_n_while_generalisation_does_not():
    ts = {r["n"]: r for r in rf_timescales(rf_curves(CFG), 0.1, CFG["gap_thresholds"][0]).to_pylist()}
    assert ts[32]["tau_mem"] > 1.5 * ts[16]["tau_mem"]
    assert ts[32]["tau_gen"] < 1.5 * ts[16]["tau_gen"]
    assert all(r["tau_gen"] < r["tau_mem"] for r in ts.values())


def test_seeded():
    assert rf_curves({**CFG, "sizes": [16]}).equals(rf_curves({**CFG, "sizes": [16]}))
