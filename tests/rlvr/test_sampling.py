"""Shared sampling: KV-cache decoding equals full recomputation; seeds; filters; likelihoods."""
import pytest
import torch

from pipeline.models.transformer import Transformer, TransformerConfig
from pipeline.sampling import completion_loglik, completion_token_logprobs, filter_probs, generate


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    m = Transformer(TransformerConfig(vocab_size=17, d_model=32, n_layers=2, n_heads=4, max_seq_len=64,
                                      init_std=0.3))  # large init: peaky, varied predictions
    return m.eval()


def prompts_of_mixed_lengths():
    g = torch.Generator().manual_seed(1)
    return [torch.randint(3, 17, (int(n),), generator=g).tolist() for n in (3, 5, 3, 7, 1, 5, 5, 2)]


def test_kv_cache_greedy_equals_no_cache_token_for_token(model):
    prompts = prompts_of_mixed_lengths()
    with_cache = generate(model, prompts, max_new_tokens=24, temperature=0.0, use_cache=True)
    without = generate(model, prompts, max_new_tokens=24, temperature=0.0, use_cache=False)
    assert with_cache == without
    assert all(len(c) == 24 for c in with_cache)
    assert len({tuple(c) for c in with_cache}) > 1  # the prompts matter


def test_sampling_is_deterministic_for_a_seed_and_equal_with_and_without_cache(model):
    prompts = prompts_of_mixed_lengths() * 4
    a = generate(model, prompts, max_new_tokens=12, temperature=1.0, top_p=0.9, seed=5)
    b = generate(model, prompts, max_new_tokens=12, temperature=1.0, top_p=0.9, seed=5)
    c = generate(model, prompts, max_new_tokens=12, temperature=1.0, top_p=0.9, seed=6)
    d = generate(model, prompts, max_new_tokens=12, temperature=1.0, top_p=0.9, seed=5, use_cache=False)
    assert a == b == d
    assert a != c


def test_mixed_length_batch_equals_one_prompt_at_a_time(model):
    """Grouping by length is exact: no prompt sees another prompt's padding."""
    prompts = prompts_of_mixed_lengths()
    together = generate(model, prompts, max_new_tokens=10, temperature=0.0)
    alone = [generate(model, [p], max_new_tokens=10, temperature=0.0)[0] for p in prompts]
    assert together == alone


def test_completions_stop_after_eos(model):
    prompts = prompts_of_mixed_lengths()
    free = generate(model, prompts, max_new_tokens=20, temperature=0.0)
    eos = free[0][3]  # a token that the first greedy completion emits at position 3
    cut = generate(model, prompts, max_new_tokens=20, temperature=0.0, eos_id=eos)
    assert cut[0] == free[0][: free[0].index(eos) + 1]
    for f, c in zip(free, cut):
        assert c == (f[: f.index(eos) + 1] if eos in f else f)


def test_filters_keep_the_nucleus_and_the_argmax():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    p = filter_probs(logits, top_p=0.7)
    assert torch.allclose(p, torch.tensor([[0.625, 0.375, 0.0, 0.0]]))
    p = filter_probs(logits, top_p=0.01)
    assert torch.allclose(p, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    p = filter_probs(logits, min_p=0.5)
    assert torch.allclose(p, torch.tensor([[0.625, 0.375, 0.0, 0.0]]))
    cold = filter_probs(logits, temperature=0.5)
    assert cold[0, 0] > 0.5 and torch.isclose(cold.sum(), torch.tensor(1.0))


def test_bad_sampling_arguments(model):
    with pytest.raises(ValueError, match="top_p"):
        generate(model, [[1]], max_new_tokens=2, top_p=0.0)
    with pytest.raises(ValueError, match="max_seq_len"):
        generate(model, [[1] * 60], max_new_tokens=10)
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [[]], max_new_tokens=2)


def test_completion_logprobs_match_a_manual_chain_rule(model):
    prompts = [[3, 4, 5], [6], [7, 8]]
    comps = [[9, 10], [11, 12, 13, 14], []]
    logp, mask = completion_token_logprobs(model, prompts, comps)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]
    with torch.no_grad():
        for i, (p, c) in enumerate(zip(prompts, comps)):
            seq = torch.tensor([p + c])
            lsm = torch.log_softmax(model(seq)[0], dim=-1)
            for j, tok in enumerate(c):
                assert logp[i, j].item() == pytest.approx(lsm[len(p) - 1 + j, tok].item(), abs=1e-5)
    sums, counts = completion_loglik(model, prompts, comps, batch_size=2)
    assert counts.tolist() == [2, 4, 0]
    assert sums[2] == 0.0
    assert sums[1] == pytest.approx(logp[1].sum().item(), abs=1e-5)


def test_sampled_frequencies_follow_the_model(model):
    """Sampling at T=1 draws the first token with the model's own next-token distribution."""
    prompt = [3, 4]
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([prompt]))[0, -1], dim=-1)
    draws = generate(model, [prompt] * 4000, max_new_tokens=1, temperature=1.0, seed=0)
    freq = torch.bincount(torch.tensor([d[0] for d in draws]), minlength=17).float() / 4000
    assert torch.allclose(freq, probs, atol=0.03)


def test_completions_stop_on_any_of_several_stop_ids(model):
    """A chat model ends on its end-of-turn or its end-of-text id, whichever comes first."""
    prompts = prompts_of_mixed_lengths()
    free = generate(model, prompts, max_new_tokens=20, temperature=0.0)
    a, b = free[0][2], free[1][4]
    cut = generate(model, prompts, max_new_tokens=20, temperature=0.0, eos_id=(a, b))
    for f, c in zip(free, cut):
        end = next((i for i, t in enumerate(f) if t in (a, b)), None)
        assert c == (f if end is None else f[: end + 1])


def test_chunked_logprobs_equal_the_full_log_softmax_with_gradients(model):
    """Scoring completion positions through the head in chunks (recomputed in backward) gives
    the same values and gradients as a log-softmax over the whole [B, T, V] logits."""
    from pipeline.sampling import token_logprobs

    prompts = prompts_of_mixed_lengths()
    comps = [p[::-1] + [3] for p in prompts]

    class Logits(torch.nn.Module):  # the same model seen only through its logits
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, idx):
            return self.inner(idx)

    grads = []
    for m in (model, Logits(model)):
        model.zero_grad()
        logp, mask = completion_token_logprobs(m, prompts, comps, temperature=0.7)
        (logp.sum() / mask.sum()).backward()
        grads.append((logp.detach(), mask, model.head.weight.grad.clone(), model.embed.weight.grad.clone()))
    for x, y in zip(*grads):
        assert torch.allclose(x, y, atol=1e-5)
    h = torch.randn(10, 32, requires_grad=True)
    t = torch.randint(17, (10,))
    small = token_logprobs(h, model.head, t, max_elements=17 * 3)  # four chunks of ≤ 3 rows
    assert torch.allclose(small, torch.log_softmax(model.head(h), -1)[torch.arange(10), t], atol=1e-6)
    model.zero_grad()
