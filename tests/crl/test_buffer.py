"""The trajectory buffer: goals are later states of the same trajectory, offsets ~ truncated geometric."""
import numpy as np
import pytest
import torch
from scipy import stats

from pipeline.studies.crl.buffer import TrajectoryBuffer, truncated_geometric


def filled(capacity=300, num_envs=4, episode=25, steps=400) -> TrajectoryBuffer:
    """A buffer whose obs encode (trajectory id, time in episode) and whose achieved goal is the obs."""
    buf = TrajectoryBuffer(capacity, num_envs, 2, 1, 2, episode)
    for t in range(steps):
        traj = torch.arange(num_envs) + num_envs * (t // episode)
        obs = torch.stack([traj.float(), torch.full((num_envs,), float(t % episode))], -1)
        buf.insert(obs, torch.zeros(num_envs, 1), obs, traj)
    return buf


def test_goals_are_future_states_of_the_same_trajectory():
    buf = filled()  # 400 steps into a 300-step ring: wrapped around
    batch = buf.sample(4096, 0.9, torch.Generator().manual_seed(0))
    traj, t = batch["obs"][:, 0], batch["obs"][:, 1]
    assert torch.equal(batch["goal"][:, 0], traj), "goal from another trajectory"
    assert torch.equal(batch["goal"][:, 1] - t, batch["offset"].float()), "goal is not `offset` steps later"
    assert (batch["offset"] >= 1).all()
    assert (batch["goal"][:, 1] <= 24).all(), "goal beyond the episode's end"


def test_sampling_never_crosses_into_the_next_episode_nor_unstored_steps():
    buf = filled(capacity=60, num_envs=2, episode=10, steps=137)
    batch = buf.sample(2048, 0.5, torch.Generator().manual_seed(1))
    newest = buf.inserted - 1
    assert (batch["t"] + batch["offset"] <= newest).all()
    assert (batch["t"] >= buf.inserted - buf.size).all()
    assert torch.equal(batch["goal"][:, 0], batch["obs"][:, 0])


def test_offsets_follow_the_truncated_geometric_law():
    gamma, L, n = 0.99, 40, 200_000
    k = truncated_geometric(torch.rand(n, generator=torch.Generator().manual_seed(0)), torch.full((n,), L), gamma)
    pmf = gamma ** np.arange(1, L + 1)
    pmf /= pmf.sum()
    counts = np.bincount(k.numpy(), minlength=L + 1)[1:]
    assert counts.sum() == n and k.min() >= 1 and k.max() <= L
    assert stats.chisquare(counts, pmf * n).pvalue > 1e-3


def test_buffer_offsets_match_gamma_on_long_trajectories():
    # Long episodes, so truncation rarely binds: the mean offset approaches 1/(1-γ) restricted to the
    # remaining length. Check against the exact truncated law for each sample's remaining length.
    gamma = 0.9
    buf = filled(capacity=500, num_envs=8, episode=200, steps=400)
    batch = buf.sample(20_000, gamma, torch.Generator().manual_seed(3))
    remaining = 199 - batch["obs"][:, 1].long()
    remaining = torch.minimum(remaining, buf.inserted - 1 - batch["t"])
    k = np.arange(1, 200)
    expect = [((gamma ** k[:r]) * k[:r]).sum() / (gamma ** k[:r]).sum() for r in remaining.tolist()]
    assert batch["offset"].float().mean().item() == pytest.approx(np.mean(expect), rel=0.03)
    assert np.mean(expect) == pytest.approx(1 / (1 - gamma), rel=0.1)


def test_sampling_an_empty_buffer_is_a_clear_error():
    buf = TrajectoryBuffer(10, 2, 2, 1, 2, 5)
    with pytest.raises(ValueError, match="collect before sampling"):
        buf.sample(4, 0.99)
