"""The sink metrics against hand-built attention, value and residual tensors."""
import numpy as np
import pytest
import torch

from pipeline.metrics import attention as am
from pipeline.models.transformer import Stats, Transformer, TransformerConfig


def causal(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# layer 0: head 0 a sink (most mass on token 0), head 1 attends to itself; layer 1: head 0 uniform, head 1 half sink
SINK = causal([[1, 0, 0, 0], [0.8, 0.2, 0, 0], [0.7, 0.1, 0.2, 0], [0.9, 0, 0, 0.1]])
SELF = causal([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
UNIF = causal([[1, 0, 0, 0], [1 / 2, 1 / 2, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0], [1 / 4] * 4])
HALF = causal([[1, 0, 0, 0], [0.2, 0.8, 0, 0], [0.2, 0.4, 0.4, 0], [0.2, 0.3, 0.2, 0.3]])
ATTN = [torch.stack([SINK, SELF]), torch.stack([UNIF, HALF])]


def test_first_token_attention_excludes_query_zero():
    got = am.first_token_attn_per_head(ATTN)
    np.testing.assert_allclose(got, [[0.8, 0.0], [(1 / 2 + 1 / 3 + 1 / 4) / 3, 0.2]], rtol=1e-6)
    assert am.uniform_first_token_share(4) == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)


def test_sink_rate_is_gu_et_als_share_of_heads():
    # alpha_0 over queries t >= 0 (Gu et al. count the token itself)
    scores = am.sink_scores(ATTN, k=0, window=64)
    np.testing.assert_allclose(scores, [[0.85, 0.25], [(1 + 1 / 2 + 1 / 3 + 1 / 4) / 4, 0.4]], rtol=1e-6)
    assert am.sink_rate(ATTN, eps=0.3) == 0.75  # 0.85, 0.52, 0.4 exceed 0.3; 0.25 does not
    assert am.sink_rate(ATTN, eps=0.5) == 0.5
    assert am.sink_rate(ATTN, eps=0.55, window=2) == 0.75  # first two queries: 0.9, 0.5, 0.75, 0.6
    # token 1: queries t >= 1 only
    np.testing.assert_allclose(am.sink_scores(ATTN, k=1)[0], [0.1, 1 / 3], rtol=1e-6)


def test_bos_residual_peak_and_value_drain():
    resid = [torch.tensor([10.0, 1, 2, 3]), torch.tensor([1.0, 1, 1, 1])]
    np.testing.assert_allclose(am.bos_residual_ratio(resid), [5.0, 1.0])
    values = [torch.tensor([[0.1, 1, 1, 1], [2.0, 1, 1, 1]])]
    np.testing.assert_allclose(am.bos_value_ratio(values), [[0.1, 2.0]], rtol=1e-6)


def test_gate_by_class():
    gate = [torch.tensor([[[0.9], [0.2], [0.8]]])]  # [B=1, T=3, H=1]
    inside, outside = am.gate_by_class(gate, torch.tensor([[True, False, True]]))
    np.testing.assert_allclose(inside, [[0.85]], rtol=1e-6)
    np.testing.assert_allclose(outside, [[0.2]], rtol=1e-6)


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_model_fills_the_per_head_stats(positions):
    torch.manual_seed(0)
    m = Transformer(TransformerConfig(vocab_size=20, d_model=16, n_layers=2, n_heads=2, max_seq_len=12,
                                      gate="headwise", positions=positions))
    stats = Stats()
    x = torch.randint(0, 20, (3, 12))
    torch.testing.assert_close(m(x), m(x, stats=stats), atol=1e-5, rtol=1e-5)
    assert [a.shape for a in stats.attn] == [(2, 12, 12)] * 2
    assert [g.shape for g in stats.gate] == [(3, 12, 2)] * 2
    assert [v.shape for v in stats.value_norm] == [(2, 12)] * 2 and stats.resid_norm[0].shape == (12,)
    np.testing.assert_allclose(am.first_token_attn_per_head(stats.attn).mean(1), stats.first_token_attn, rtol=1e-5)


def test_learned_positions_cannot_extrapolate():
    m = Transformer(TransformerConfig(vocab_size=20, d_model=16, n_layers=1, n_heads=2, max_seq_len=8, positions="learned"))
    assert m.pos_embed.weight.shape == (8, 16)
    with pytest.raises(ValueError, match="learned positions cover 8"):
        m(torch.zeros(1, 9, dtype=torch.long))


def test_config_refuses_context_multipliers_with_learned_positions():
    from pipeline.config import ConfigError, load_config, validate_config

    cfg = load_config("config/config.yaml")
    ga = cfg["studies"]["gated_attention"]
    assert ga["model"]["positions"] == "learned"
    ga["eval"]["context_multipliers"] = [1, 2]
    with pytest.raises(ConfigError, match="studies.gated_attention.eval.context_multipliers"):
        validate_config(cfg)
    ga["model"]["positions"] = "rope"
    validate_config(cfg)
