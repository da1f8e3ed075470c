"""The residual network: structure, parameter count, initialisation, and deep nets training."""
import math

import pytest
import torch
from torch import nn

from pipeline.studies.crl.agent import AgentConfig, CRLAgent, CRLLearner
from pipeline.studies.crl.network import ResidualBlock, ResidualMLP
from pipeline.studies.crl.sizing import Dims, agent_params, matched_width, mlp_params


@pytest.mark.parametrize("in_dim, out_dim, width, depth", [(4, 64, 32, 4), (3, 6, 16, 8), (2, 64, 24, 64)])
def test_parameter_count_and_depth(in_dim, out_dim, width, depth):
    net = ResidualMLP(in_dim, out_dim, width, depth)
    assert sum(p.numel() for p in net.parameters()) == mlp_params(in_dim, out_dim, width, depth)
    assert net.dense_layers_in_blocks() == depth
    assert len(net.blocks) == depth // 4
    assert sum(isinstance(m, nn.LayerNorm) for m in net.modules()) == depth + 1
    assert net(torch.zeros(5, in_dim)).shape == (5, out_dim)


def test_agent_parameter_count_matches_sizing():
    dims = Dims(obs=5, action=3, goal=2)
    agent = CRLAgent(AgentConfig(5, 3, 2, width=32, depth=8, actor_depth=4, repr_dim=16))
    expect = agent_params(dims, 32, 8, 16, actor_depth=4)
    assert sum(p.numel() for p in agent.parameters()) == expect["total"]
    assert sum(p.numel() for p in agent.actor.parameters()) == expect["actor"]


def test_skip_is_added_after_the_fourth_activation():
    block = ResidualBlock(8)
    x = torch.randn(3, 8)
    assert torch.allclose(block(x), block.layers(x) + x)
    assert isinstance(block.layers[3][2], nn.SiLU)  # Dense → LayerNorm → Swish, four times


def test_lecun_uniform_init_and_zero_bias():
    torch.manual_seed(0)
    net = ResidualMLP(10, 4, 256, 4)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            bound = 1 / math.sqrt(m.in_features)
            assert m.weight.abs().max() <= bound
            assert m.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
            assert (m.bias == 0).all()


@pytest.mark.parametrize("depth", [0, 6, -4])
def test_depth_must_be_a_multiple_of_four(depth):
    with pytest.raises(ValueError, match="multiple of 4"):
        ResidualMLP(2, 2, 8, depth)


def test_matched_width_is_the_closest_parameter_count():
    dims = Dims(2, 2, 2)
    target = agent_params(dims, 64, 32)["total"]
    w = matched_width(target, dims, 4)
    totals = {v: abs(agent_params(dims, v, 4)["total"] - target) for v in (w - 1, w, w + 1)}
    assert min(totals, key=totals.get) == w
    assert w > 64


def test_depth_64_trains_without_nans():
    torch.manual_seed(0)
    learner = CRLLearner(CRLAgent(AgentConfig(2, 2, 2, width=32, depth=64, repr_dim=16)))
    g = torch.Generator().manual_seed(0)
    batch = {"obs": torch.randn(32, 2, generator=g), "action": torch.rand(32, 2, generator=g) * 2 - 1,
             "goal": torch.randn(32, 2, generator=g)}
    before = [p.detach().clone() for p in learner.agent.parameters()]
    for _ in range(5):
        metrics = learner.update(batch, g)
        assert all(torch.isfinite(v) for v in metrics.values()), metrics
    assert all(torch.isfinite(p).all() for p in learner.agent.parameters())
    changed = [not torch.equal(a, b) for a, b in zip(before, learner.agent.parameters())]
    assert all(changed), "every parameter of a depth-64 agent should receive gradient"
