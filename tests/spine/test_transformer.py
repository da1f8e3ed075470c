"""The shared transformer: the gate at G1, shapes, MoE with its auxiliary loss, KV cache."""
import pytest
import torch

from pipeline.models.transformer import LOCAL_EXPERT, Stats, Transformer, TransformerConfig

torch.set_num_threads(1)


def tiny(**kw) -> TransformerConfig:
    return TransformerConfig(vocab_size=50, d_model=32, n_layers=2, n_heads=4, max_seq_len=32, **kw)


@pytest.mark.parametrize("gate", ["headwise", "elementwise"])
def test_gate_fixed_to_one_is_vanilla_attention_exactly(gate):
    torch.manual_seed(0)
    gated = Transformer(tiny(gate=gate))
    vanilla = Transformer(tiny(gate="none"))
    missing, unexpected = vanilla.load_state_dict(gated.state_dict(), strict=False)
    assert not missing and all(".attn.gate." in k for k in unexpected)
    for block in gated.blocks:
        block.attn.gate_act = torch.ones_like
    x = torch.randint(0, 50, (3, 16))
    assert torch.equal(gated(x), vanilla(x))


@pytest.mark.parametrize("gate,width", [("headwise", 4), ("elementwise", 32)])
def test_gate_shapes_and_values(gate, width):
    torch.manual_seed(0)
    m = Transformer(tiny(gate=gate))
    assert m.blocks[0].attn.gate.out_features == width  # one scalar per head, or per channel
    stats = Stats()
    out = m(torch.randint(0, 50, (2, 10)), stats=stats)
    assert out.shape == (2, 10, 50)
    assert len(stats.mean_gate) == 2 and all(0 < g < 1 for g in stats.mean_gate)
    assert m.gate_params() == 2 * (32 * width + width)


def test_stats_path_matches_sdpa_path():
    torch.manual_seed(0)
    m = Transformer(tiny(gate="elementwise"))
    x = torch.randint(0, 50, (2, 12))
    stats = Stats()
    torch.testing.assert_close(m(x), m(x, stats=stats), atol=1e-5, rtol=1e-5)
    assert len(stats.first_token_attn) == 2 and len(stats.max_abs_hidden) == 2
    # queries t >= 1 only (query 0 has no choice); a fresh model attends about uniformly
    uniform = sum(1 / (t + 1) for t in range(1, 12)) / 11
    assert all(0.5 * uniform < a < 2 * uniform for a in stats.first_token_attn)


def test_kv_cache_matches_full_forward():
    torch.manual_seed(0)
    m = Transformer(tiny(gate="headwise")).eval()
    x = torch.randint(0, 50, (2, 20))
    full = m(x)
    cache = m.new_cache(2, 32)
    first = m(x[:, :7], cache=cache)
    rest = [m(x[:, t:t + 1], cache=cache) for t in range(7, 20)]
    torch.testing.assert_close(torch.cat([first, *rest], dim=1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="cannot hold"):
        m(x, cache=cache)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="gate"):
        tiny(gate="additive")
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(vocab_size=10, d_model=30, n_heads=4)


def test_moe_forward_backward_with_aux_loss(single_process_group):
    torch.manual_seed(0)
    m = Transformer(tiny(ffn="moe", n_experts=4, top_k=2, gate="elementwise"))
    x = torch.randint(0, 50, (4, 16))
    logits = m(x)
    assert logits.shape == (4, 16, 50)
    aux = m.aux_loss
    assert aux.ndim == 0 and aux.item() > 0
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 50), x.reshape(-1)) + 0.01 * aux
    loss.backward()
    router = [p for n, p in m.named_parameters() if "gate.wg" in n]
    assert router and all(p.grad is not None and p.grad.abs().sum() > 0 for p in router)
    expert = [p for n, p in m.named_parameters() if "deepspeed_experts" in n]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in expert)


@pytest.mark.parametrize("rank", [0, 1])
def test_expert_parallel_rank_starts_from_the_one_process_weights(rank, monkeypatch):
    """ep_size=2: rank r holds experts 2r, 2r+1 of the model one process builds from the same seed,
    the same shared weights, and leaves the RNG where one process would (what follows is equal too)."""
    torch.manual_seed(0)
    one = Transformer(tiny(ffn="moe", n_experts=4, top_k=2)).state_dict()
    after_one = torch.rand(3)
    monkeypatch.setenv("RANK", str(rank))
    torch.manual_seed(0)
    part = Transformer(tiny(ffn="moe", n_experts=4, top_k=2, ep_size=2)).state_dict()
    assert torch.equal(torch.rand(3), after_one)
    experts = 0
    for key, value in part.items():
        m = LOCAL_EXPERT.match(key)
        if m:
            key = f"{m.group(1)}{2 * rank + int(m.group(2))}{m.group(3)}"
            experts += 1
        assert torch.equal(value, one[key]), key
    assert experts and len(part) < len(one)


def test_flops_accounting_counts_active_experts_only():
    dense = Transformer(tiny())
    assert dense.flops_per_token(32) > 6 * dense.num_params()
