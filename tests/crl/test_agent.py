"""The CRL losses and updates."""
import math

import pytest
import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from pipeline.studies.crl.agent import AgentConfig, CRLAgent, CRLLearner, energies, infonce_loss


def test_infonce_matches_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    phi, psi = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    coeff = 0.1
    total, penalty = 0.0, 0.0
    for i in range(6):
        logits = [-math.dist(phi[i].tolist(), psi[j].tolist()) for j in range(6)]
        lse = math.log(sum(math.exp(x) for x in logits))
        total += -(logits[i] - lse)
        penalty += lse ** 2
    loss, metrics = infonce_loss(phi, psi, coeff)
    assert loss.item() == pytest.approx(total / 6 + coeff * penalty / 6, rel=1e-5)
    assert metrics["infonce"].item() == pytest.approx(total / 6, rel=1e-5)


def test_energies_are_negative_distances_and_have_finite_gradient_at_zero():
    phi = torch.tensor([[0.0, 0.0], [3.0, 4.0]], requires_grad=True)
    e = energies(phi, phi.detach())
    assert torch.allclose(e.detach(), torch.tensor([[0.0, -5.0], [-5.0, 0.0]]), atol=1e-5)
    e.sum().backward()
    assert torch.isfinite(phi.grad).all()


def small_learner(seed=0, **kw):
    torch.manual_seed(seed)
    return CRLLearner(CRLAgent(AgentConfig(2, 2, 2, width=32, depth=4, repr_dim=16, **kw)))


def fixed_batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(n, 2, generator=g) * 4
    return {"obs": obs, "action": torch.rand(n, 2, generator=g) * 2 - 1, "goal": obs + 0.3 * torch.randn(n, 2, generator=g)}


def test_critic_loss_falls_on_a_fixed_batch():
    learner, batch = small_learner(critic_lr=1e-3), fixed_batch()
    first = learner.critic_loss(batch)[0].item()
    for _ in range(100):
        learner.update(batch)
    last, metrics = learner.critic_loss(batch)
    assert last.item() < 0.7 * first
    assert metrics["accuracy"].item() > 1 / 64 * 5, "the critic should pick out its positives well above chance"


def test_log_prob_is_the_tanh_gaussian_density():
    agent = small_learner().agent
    obs, goal = torch.randn(8, 2), torch.randn(8, 2)
    g = torch.Generator().manual_seed(0)
    action, logp = agent.sample_action(obs, goal, g)
    mean, log_std = agent.policy_dist(obs, goal)
    dist = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform(cache_size=1)])
    ref = dist.log_prob(action.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1)
    assert torch.allclose(logp, ref, atol=2e-3)
    assert (action.abs() < 1).all()


def test_actor_step_leaves_the_critic_and_critic_step_leaves_the_actor():
    learner, batch = small_learner(), fixed_batch()
    agent = learner.agent
    critic0 = [p.detach().clone() for p in agent.critic_parameters()]
    actor0 = [p.detach().clone() for p in agent.actor.parameters()]
    loss, _ = learner.critic_loss(batch)
    learner.critic_opt.zero_grad()
    loss.backward()
    learner.critic_opt.step()
    assert all(torch.equal(a, b) for a, b in zip(actor0, agent.actor.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(critic0, agent.critic_parameters()))


def test_entropy_temperature_moves_toward_the_target():
    learner, batch = small_learner(entropy_param=0.5), fixed_batch()
    m = learner.update(batch)
    # Entropy above the target (-1 for 2-d actions) makes the temperature fall, and vice versa.
    went_down = m["alpha"].item() < 1.0
    assert went_down == (m["entropy"].item() > learner.agent.target_entropy)


def test_deterministic_action_is_tanh_of_the_mean():
    agent = small_learner().agent
    obs, goal = torch.randn(4, 2), torch.randn(4, 2)
    assert torch.allclose(agent.act(obs, goal, deterministic=True), torch.tanh(agent.policy_dist(obs, goal)[0]))
