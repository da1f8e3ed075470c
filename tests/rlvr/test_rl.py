"""GRPO/RLOO: advantages, the policy-gradient step, rollouts that are a function of the step."""
from types import SimpleNamespace

import pytest
import torch

from pipeline.models.transformer import Transformer, TransformerConfig
from pipeline.sampling import completion_token_logprobs
from pipeline.studies.rlvr.rl import advantages, policy_loss, rl_loss
from pipeline.studies.rlvr.task import Checker
from pipeline.models.chars import CharTokenizer


@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_advantages_are_zero_mean_within_each_group(algorithm):
    g = torch.Generator().manual_seed(0)
    rewards = (torch.rand(12 * 8, generator=g) < 0.4).float()
    adv = advantages(rewards, 8, algorithm).view(12, 8)
    assert torch.allclose(adv.mean(dim=1), torch.zeros(12), atol=1e-6)
    groups = rewards.view(12, 8)
    for r, a in zip(groups, adv):
        if r.std() == 0:
            assert torch.all(a == 0)  # a group that agrees teaches nothing
        else:
            assert torch.all(a[r == 1] > 0) and torch.all(a[r == 0] < 0)


def test_advantage_formulas():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    grpo = advantages(r, 3, "grpo")
    assert torch.allclose(grpo[:3], (r[:3] - 1 / 3) / r[:3].std(unbiased=False), atol=1e-5)
    rloo = advantages(r, 3, "rloo")
    assert torch.allclose(rloo[:3], torch.tensor([1.0, -0.5, -0.5]))  # r_i minus the mean of the others
    with pytest.raises(ValueError, match="groups of 4"):
        advantages(r, 4, "grpo")
    with pytest.raises(ValueError, match="algorithm"):
        advantages(r, 3, "ppo")


def small_model(seed=0):
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(vocab_size=15, d_model=32, n_layers=2, n_heads=2, max_seq_len=16))


@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_one_rl_step_raises_the_likelihood_of_rewarded_completions(algorithm):
    torch.set_num_threads(1)
    model = small_model()
    tok = CharTokenizer("0123456789+=")
    prompts = [tok.prompt_ids("12+34=")] * 4 + [tok.prompt_ids("50+50=")] * 4
    texts = ["046", "047", "045", "146", "100", "010", "099", "101"]
    comps = [tok.target_ids(t) for t in texts]
    answers = ["046"] * 4 + ["100"] * 4
    rewards = torch.tensor([float(Checker().check(t, a)) for t, a in zip(texts, answers)])
    assert rewards.tolist() == [1, 0, 0, 0, 1, 0, 0, 0]
    adv = advantages(rewards, 4, algorithm)

    def seq_logp():
        with torch.no_grad():
            lp, _ = completion_token_logprobs(model, prompts, comps)
        return lp.sum(dim=1)

    before = seq_logp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loss, _ = policy_loss(model, prompts, comps, adv, pad_id=tok.pad_id)
    loss.backward()
    opt.step()
    after = seq_logp()
    rewarded = rewards == 1
    assert torch.all(after[rewarded] > before[rewarded])
    # the expected reward of each prompt's group (probability mass on its rewarded completion) rose
    assert (after[rewarded].exp() - before[rewarded].exp()).min() > 0
    assert (after[~rewarded] - before[~rewarded]).mean() < 0


def test_kl_penalty_is_zero_against_itself_and_positive_after_drift():
    model, ref = small_model(0), small_model(0)
    tok = CharTokenizer("0123456789+=")
    prompts = [tok.prompt_ids("12+34=")] * 2
    comps = [tok.target_ids("046"), tok.target_ids("12")]
    adv = torch.zeros(2)
    _, m = policy_loss(model, prompts, comps, adv, pad_id=0, ref_model=ref, kl_coef=0.1)
    assert m["kl"] == pytest.approx(0.0, abs=1e-7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    _, m = policy_loss(model, prompts, comps, adv, pad_id=0, ref_model=ref, kl_coef=0.1)
    assert m["kl"] > 0


def test_rollouts_and_loss_are_a_pure_function_of_the_step():
    """What makes resume exact: the same ctx gives the same rollouts, rewards and loss."""
    torch.set_num_threads(1)
    model = small_model()
    tok = CharTokenizer("0123456789+=")
    rows = [("12+34=", "046"), ("50+50=", "100"), ("07+08=", "015")]
    rl = {"group_size": 4, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 4, "kl_coef": 0.0,
          "algorithm": "grpo"}
    fn = rl_loss([tok.prompt_ids(p) for p, _ in rows], [a for _, a in rows], tok, Checker(), rl)

    def ctx(step):
        seed = 1000 + step
        return SimpleNamespace(micro_batch=2, global_micro_batch=2, rank=0,
                               generator=lambda: torch.Generator().manual_seed(seed),
                               local=lambda b: b)

    a, ma = fn(model, ctx(3))
    b, mb = fn(model, ctx(3))
    assert torch.equal(a, b) and ma == mb
    assert 0 <= ma["reward"] <= 1 and 1 <= ma["completion_len"] <= 4
