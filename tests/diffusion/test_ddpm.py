"""DDPM: the forward process, the loss, and DDIM sampling."""
import numpy as np
import pytest
import torch

from pipeline.metrics.memorization import memorization_fraction
from pipeline.studies.diffusion.ddpm import DDPMConfig, Diffusion
from pipeline.studies.diffusion.denoiser import build_denoiser

from .conftest import Oracle

MLP = {"kind": "mlp", "mlp": {"width": 64, "depth": 2}}


def test_schedule_is_the_paper_linear_one():
    d = Diffusion(DDPMConfig(T=1000, beta_start=1e-4, beta_end=2e-2))
    assert d.betas[0].item() == pytest.approx(1e-4) and d.betas[-1].item() == pytest.approx(2e-2)
    assert torch.all(d.betas[1:] > d.betas[:-1])
    np.testing.assert_allclose(d.alpha_bar.numpy(), np.cumprod(1 - np.linspace(1e-4, 2e-2, 1000)))
    assert d.alpha_bar[-1] < 1e-4  # x_T is (almost) pure noise


def test_forward_noising_matches_the_closed_form():
    d = Diffusion(DDPMConfig())
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(5, 1, 8, 8, generator=g) * 2 - 1, torch.randn(5, 1, 8, 8, generator=g)
    t = torch.tensor([0, 10, 250, 600, 999])
    xt = d.q_sample(x0, t, noise)
    for i, ti in enumerate(t.tolist()):
        ab = float(np.prod(1 - np.linspace(1e-4, 2e-2, 1000)[: ti + 1]))
        torch.testing.assert_close(xt[i], np.sqrt(ab) * x0[i] + np.sqrt(1 - ab) * noise[i], rtol=1e-5, atol=1e-6)


def test_q_sample_marginal_statistics():
    """Many draws at one t: mean sqrt(ab)·x0 and variance 1 - ab per pixel."""
    d = Diffusion(DDPMConfig())
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((20000, 1, 2, 2), 0.5)
    t = torch.full((20000,), 300)
    xt = d.q_sample(x0, t, torch.randn(x0.shape, generator=g))
    ab = float(d.alpha_bar[300])
    assert xt.mean().item() == pytest.approx(0.5 * ab**0.5, abs=0.01)
    assert xt.var().item() == pytest.approx(1 - ab, rel=0.03)


def test_one_training_step_lowers_the_loss_on_a_fixed_batch():
    d = Diffusion(DDPMConfig())
    torch.manual_seed(0)
    model = build_denoiser(MLP, (1, 8, 8))
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(32, 1, 8, 8, generator=g) * 2 - 1
    t, noise = d.draw(x0, g)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    before = d.loss_at(model, x0, t, noise)
    opt.zero_grad()
    before.backward()
    opt.step()
    assert d.loss_at(model, x0, t, noise).item() < before.item()


def test_ddim_is_deterministic_for_a_seed():
    d = Diffusion(DDPMConfig())
    torch.manual_seed(0)
    model = build_denoiser(MLP, (1, 8, 8))
    a = d.ddim_sample(model, 6, (1, 8, 8), 20, torch.Generator().manual_seed(7))
    again = d.ddim_sample(model, 6, (1, 8, 8), 20, torch.Generator().manual_seed(7))
    batched = d.ddim_sample(model, 6, (1, 8, 8), 20, torch.Generator().manual_seed(7), batch=4)
    c = d.ddim_sample(model, 6, (1, 8, 8), 20, torch.Generator().manual_seed(8))
    assert torch.equal(a, again) and not torch.allclose(a, c)
    torch.testing.assert_close(batched, a)  # same noise, only the batching (float rounding) differs
    assert a.shape == (6, 1, 8, 8) and a.abs().max() <= 1


def test_ddim_with_the_empirical_optimal_denoiser_copies_training_images():
    """η = 0 DDIM with the exact empirical score lands on training images: f_mem = 1."""
    d = Diffusion(DDPMConfig())
    g = torch.Generator().manual_seed(3)
    train = torch.rand(6, 1, 8, 8, generator=g) * 2 - 1
    samples = d.ddim_sample(Oracle(d, train), 40, (1, 8, 8), 50, torch.Generator().manual_seed(4))
    assert memorization_fraction(samples, train)[0] == 1.0


def test_ddim_timesteps():
    d = Diffusion(DDPMConfig(T=1000))
    ts = d.ddim_timesteps(100)
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == 100 and ts == sorted(ts, reverse=True)
    with pytest.raises(ValueError, match="ddim_steps"):
        d.ddim_timesteps(0)


def test_bad_schedule_is_named():
    with pytest.raises(ValueError, match="beta_start"):
        DDPMConfig(beta_start=0.1, beta_end=0.01)
