"""One decoder-only transformer for every study that trains a language model.

RMSNorm, RoPE (or learned absolute positions, as in Guo et al.'s sink studies),
`F.scaled_dot_product_attention`, SwiGLU or DeepSpeed MoE feed-forward, and
the gated-attention paper's output gate at position G1: `Y' = Y ⊙ sigmoid(X W_g)`, with X
the same token's normed layer input, applied after attention and before the output
projection (headwise: one scalar per head; elementwise: one per head channel).

Evaluation needs what SDPA hides (attention probabilities, hidden-state maxima, gate
values): pass a `Stats` object and the layers fill it in, using an explicit softmax path.
Generation uses a pre-allocated `KVCache`.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

GATES = ("none", "headwise", "elementwise")
FFNS = ("dense", "moe")
POSITIONS = ("rope", "learned")


@dataclass
class TransformerConfig:
    vocab_size: int
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 0  # 0 → SwiGLU width ≈ 8/3 · d_model, rounded up to a multiple of 32
    max_seq_len: int = 256
    gate: Literal["none", "headwise", "elementwise"] = "none"
    ffn: Literal["dense", "moe"] = "dense"
    n_experts: int = 4
    top_k: int = 2
    ep_size: int = 1
    capacity_factor: float = 2.0
    positions: Literal["rope", "learned"] = "rope"
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    tie_embeddings: bool = True
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.gate not in GATES:
            raise ValueError(f"gate must be one of {GATES}, got {self.gate!r}")
        if self.ffn not in FFNS:
            raise ValueError(f"ffn must be one of {FFNS}, got {self.ffn!r}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.d_ff <= 0:
            self.d_ff = 32 * math.ceil(8 * self.d_model / 3 / 32)

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)

    # -- accounting in closed form (the cost command sizes paper-scale models without building them) --
    def layer_params(self, experts: int | None = None) -> int:
        """Parameters of one block holding `experts` experts (default: all of them)."""
        d, f = self.d_model, self.d_ff
        gate = {"none": 0, "headwise": d * self.n_heads + self.n_heads, "elementwise": d * d + d}[self.gate]
        ffn = 3 * d * f if self.ffn == "dense" else (self.n_experts if experts is None else experts) * 3 * d * f \
            + d * self.n_experts  # DeepSpeed's TopKGate: Linear(d, E, bias=False)
        return 2 * d + 4 * d * d + gate + ffn

    def param_count(self, exclude_embedding: bool = False) -> int:
        """All parameters (every expert counted once), as `Transformer.num_params` on one rank with ep_size 1."""
        emb = self.vocab_size * self.d_model * (1 if self.tie_embeddings else 2)
        n = self.n_layers * self.layer_params() + self.d_model + emb
        return n - self.vocab_size * self.d_model if exclude_embedding else n

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (PaLM appendix B): 6·N_active + 12·L·d·T for attention.

        N_active counts the top_k experts a token runs and the output head (it runs even when tied).
        """
        active = self.n_layers * self.layer_params(experts=self.top_k)
        return 6.0 * (active + self.vocab_size * self.d_model) + 12.0 * self.n_layers * self.d_model * seq_len


@dataclass
class Stats:
    """Per-layer diagnostics filled in by a forward pass (evaluation only); one list entry per layer.

    Scalars summarise; the tensors keep what the sink metrics of `pipeline.metrics.attention`
    need per head and per position (batch means, so their size does not grow with the batch).
    """

    first_token_attn: list[float] = field(default_factory=list)  # mean prob. on position 0, queries t >= 1
    max_abs_hidden: list[float] = field(default_factory=list)  # largest |residual| after the layer
    rms_hidden: list[float] = field(default_factory=list)  # typical residual magnitude after the layer
    mean_gate: list[float] = field(default_factory=list)  # mean sigmoid gate value
    attn: list[torch.Tensor] = field(default_factory=list)  # [H, T, S] attention probabilities, batch mean
    value_norm: list[torch.Tensor] = field(default_factory=list)  # [H, S] mean L2 norm of each key's value
    resid_norm: list[torch.Tensor] = field(default_factory=list)  # [T] mean L2 norm of the residual after the layer
    gate: list[torch.Tensor] = field(default_factory=list)  # [B, T, H] gate value, mean over a head's channels


class KVCache:
    """Pre-allocated keys/values for incremental decoding; `length` is the filled prefix."""

    def __init__(self, n_layers: int, batch: int, n_heads: int, max_len: int, d_head: int,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        shape = (batch, n_heads, max_len, d_head)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.length = 0
        self.max_len = max_len


def _rope(x: torch.Tensor, pos: torch.Tensor, base: float) -> torch.Tensor:
    """Rotary embedding on the last dim of x [B, H, T, D] for absolute positions pos [T]."""
    d = x.shape[-1]
    inv = 1.0 / (base ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d))
    ang = pos.to(torch.float32)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        gate_dim = {"none": 0, "headwise": cfg.n_heads, "elementwise": cfg.d_model}[cfg.gate]
        self.gate = nn.Linear(cfg.d_model, gate_dim, bias=True) if gate_dim else None
        self.gate_act = torch.sigmoid  # a test swaps this for ones to recover vanilla attention

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cache: KVCache | None = None,
                layer: int = 0, stats: Stats | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        H, D = self.cfg.n_heads, self.cfg.d_head
        q, k, v = self.qkv(x).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)
        if self.cfg.positions == "rope":
            q, k = _rope(q, pos, self.cfg.rope_base), _rope(k, pos, self.cfg.rope_base)
        offset = 0
        if cache is not None:
            offset = cache.length
            if offset + T > cache.max_len:
                raise ValueError(f"KV cache of length {cache.max_len} cannot hold {offset + T} positions")
            cache.k[layer][:, :, offset:offset + T] = k
            cache.v[layer][:, :, offset:offset + T] = v
            k, v = cache.k[layer][:, :, : offset + T], cache.v[layer][:, :, : offset + T]
        S = k.shape[2]
        if stats is not None:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(D)
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=offset)
            probs = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            first = probs[..., 1:, 0] if offset == 0 and T > 1 else probs[..., 0]  # query 0 has no choice
            stats.first_token_attn.append(first.float().mean().item())
            stats.attn.append(probs.detach().float().mean(0).cpu())
            stats.value_norm.append(v.detach().float().norm(dim=-1).mean(0).cpu())
            y = probs @ v
        elif offset == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif T == 1:
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=offset)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2)  # [B, T, H, D]
        if self.gate is not None:
            g = self.gate_act(self.gate(x))  # G1: query-dependent, from the normed layer input
            if stats is not None:
                stats.mean_gate.append(g.float().mean().item())
                stats.gate.append(g.detach().float().view(B, T, H, -1).mean(-1).cpu())
            y = y * (g.view(B, T, H, 1) if self.cfg.gate == "headwise" else g.view(B, T, H, D))
        return self.out(y.reshape(B, T, H * D))


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.up = nn.Linear(d_model, 2 * d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.up(x).chunk(2, dim=-1)
        return self.down(F.silu(a) * b)


class MoEFFN(nn.Module):
    """DeepSpeed's top-k MoE around SwiGLU experts; keeps its load-balancing loss."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        from deepspeed.moe.layer import MoE

        self.moe = MoE(
            hidden_size=cfg.d_model,
            expert=SwiGLU(cfg.d_model, cfg.d_ff),
            num_experts=cfg.n_experts,
            ep_size=cfg.ep_size,
            k=cfg.top_k,
            capacity_factor=cfg.capacity_factor,
            eval_capacity_factor=cfg.capacity_factor,
            min_capacity=4,
            use_rts=False,  # random token selection would tie results to the global RNG state
            top2_2nd_expert_sampling=False,  # so would Gumbel sampling of the 2nd expert (and to the rank count)
        )
        self.aux_loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, l_aux, _counts = self.moe(x)
        self.aux_loss = l_aux
        return out


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.ffn = MoEFFN(cfg) if cfg.ffn == "moe" else SwiGLU(cfg.d_model, cfg.d_ff)

    def forward(self, x, pos, cache=None, layer=0, stats=None):
        x = x + self.attn(self.attn_norm(x), pos, cache, layer, stats)
        x = x + self.ffn(self.ffn_norm(x))
        if stats is not None:
            h = x.detach().float()
            stats.max_abs_hidden.append(h.abs().max().item())
            stats.rms_hidden.append(h.pow(2).mean().sqrt().item())
            stats.resid_norm.append(h.norm(dim=-1).mean(0).cpu())
        return x


# An expert's parameters in a state dict: (prefix, the rank-local expert index, suffix).
LOCAL_EXPERT = re.compile(r"^(.*\.deepspeed_experts\.)(\d+)(\..*)$")


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        rng = torch.get_rng_state()
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.max_seq_len, cfg.d_model) if cfg.positions == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2 style: scale residual projections
            if name.endswith(("attn.out.weight", "down.weight")):
                nn.init.normal_(p, std=cfg.init_std / math.sqrt(2 * cfg.n_layers))
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        if cfg.ffn == "moe" and cfg.ep_size > 1:
            self._init_as_one_process(rng)

    def _init_as_one_process(self, rng: torch.Tensor) -> None:
        """Start from the weights one process (ep_size=1) draws from the same RNG state.

        Why: an expert-parallel rank builds only its n_experts/ep_size experts, which shifts
        the RNG stream (every later layer differs) and gives each rank copies of the first
        experts; N expert-parallel ranks would then train another model than one rank. The
        rank's place in its expert group is RANK % ep_size (DeepSpeed groups consecutive ranks).
        """
        torch.set_rng_state(rng)
        full = Transformer(replace(self.cfg, ep_size=1)).state_dict()  # leaves the RNG where one process would
        local = self.cfg.n_experts // self.cfg.ep_size
        ep_rank = int(os.environ.get("RANK", "0")) % self.cfg.ep_size
        own = {}
        for key in self.state_dict():
            m = LOCAL_EXPERT.match(key)
            own[key] = full[f"{m.group(1)}{ep_rank * local + int(m.group(2))}{m.group(3)}" if m else key]
        self.load_state_dict(own)

    def _init(self, m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=self.cfg.init_std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def new_cache(self, batch: int, max_len: int) -> KVCache:
        p = self.embed.weight
        return KVCache(self.cfg.n_layers, batch, self.cfg.n_heads, max_len, self.cfg.d_head,
                       device=p.device, dtype=p.dtype)

    @property
    def aux_loss(self) -> torch.Tensor:
        """Sum of the MoE load-balancing losses of the last forward (0 for a dense model)."""
        losses = [b.ffn.aux_loss for b in self.blocks if isinstance(b.ffn, MoEFFN)]
        return sum(losses) if losses else torch.zeros((), device=self.embed.weight.device)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None,
                stats: Stats | None = None) -> torch.Tensor:
        return self.head(self.hidden_states(idx, cache, stats))

    def hidden_states(self, idx: torch.Tensor, cache: KVCache | None = None,
                      stats: Stats | None = None) -> torch.Tensor:
        """The normalised final hidden states [B, T, d] that `head` maps to logits: lets a
        caller score a few positions against the vocabulary in bounded memory."""
        T = idx.shape[1]
        start = cache.length if cache is not None else 0
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.embed(idx)
        if self.pos_embed is not None:
            if start + T > self.cfg.max_seq_len:
                raise ValueError(f"learned positions cover {self.cfg.max_seq_len} tokens; got {start + T} "
                                 "(RoPE extrapolates, a learned table cannot)")
            x = x + self.pos_embed(pos)
        for i, block in enumerate(self.blocks):
            x = block(x, pos, cache, i, stats)
        if cache is not None:
            cache.length += T
        return self.norm(x)

    # -- accounting ---------------------------------------------------------------
    def num_params(self, exclude_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.embed.weight.numel() if exclude_embedding else n

    def gate_params(self) -> int:
        return sum(p.numel() for b in self.blocks if b.attn.gate is not None for p in b.attn.gate.parameters())

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token: `TransformerConfig.flops_per_token` (one formula for benches and the cost command)."""
        return self.cfg.flops_per_token(seq_len)
