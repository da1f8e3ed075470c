"""The DDPM U-Net of the paper: base width W, channel multipliers, residual blocks with
GroupNorm and dropout, self-attention at the lower levels, sinusoidal time embedding.

The paper's CelebA model is W=32, multipliers (1, 2, 4), 2 residual blocks per level,
attention at the two lower levels, dropout 0.1. The same module with a smaller
configuration serves the CPU presets. The output is the predicted noise ε.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding [B, dim] of (integer or real) diffusion steps t [B]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


@dataclass
class UNetConfig:
    in_channels: int = 1
    base_width: int = 32
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 4])
    num_res_blocks: int = 2
    attn_levels: list[int] = field(default_factory=lambda: [1, 2])
    dropout: float = 0.1
    norm_groups: int = 32
    attn_heads: int = 1

    def __post_init__(self) -> None:
        if not self.channel_mult:
            raise ValueError("model.channel_mult must list at least one multiplier")
        bad = [lvl for lvl in self.attn_levels if not 0 <= lvl < len(self.channel_mult)]
        if bad:
            raise ValueError(f"model.attn_levels {bad} outside 0..{len(self.channel_mult) - 1}")


def _norm(ch: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, ch), ch)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, t_dim: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in, groups), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(t_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out, groups), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    def __init__(self, ch: int, heads: int, groups: int) -> None:
        super().__init__()
        if ch % heads:
            raise ValueError(f"model.attn_heads={heads} must divide the channel count {ch}")
        self.heads = heads
        self.norm = _norm(ch, groups)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w, g = cfg.base_width, cfg.norm_groups
        t_dim = 4 * w
        self.time_mlp = nn.Sequential(nn.Linear(w, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.conv_in = nn.Conv2d(cfg.in_channels, w, 3, padding=1)
        chans = [w]
        ch = w
        self.down = nn.ModuleList()
        for lvl, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                blocks = nn.ModuleList([ResBlock(ch, w * mult, t_dim, cfg.dropout, g)])
                ch = w * mult
                if lvl in cfg.attn_levels:
                    blocks.append(AttnBlock(ch, cfg.attn_heads, g))
                self.down.append(blocks)
                chans.append(ch)
            if lvl < len(cfg.channel_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                chans.append(ch)
        self.mid = nn.ModuleList(
            [ResBlock(ch, ch, t_dim, cfg.dropout, g), AttnBlock(ch, cfg.attn_heads, g), ResBlock(ch, ch, t_dim, cfg.dropout, g)]
        )
        self.up = nn.ModuleList()
        for lvl, mult in reversed(list(enumerate(cfg.channel_mult))):
            for _ in range(cfg.num_res_blocks + 1):
                blocks = nn.ModuleList([ResBlock(ch + chans.pop(), w * mult, t_dim, cfg.dropout, g)])
                ch = w * mult
                if lvl in cfg.attn_levels:
                    blocks.append(AttnBlock(ch, cfg.attn_heads, g))
                self.up.append(blocks)
            if lvl > 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1)]))
        self.out = nn.Sequential(_norm(ch, g), nn.SiLU(), nn.Conv2d(ch, cfg.in_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    @staticmethod
    def _run(blocks: nn.ModuleList, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        for b in blocks:
            h = b(h, temb) if isinstance(b, ResBlock) else b(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        levels = len(self.cfg.channel_mult) - 1
        if x.shape[-1] % (2**levels) or x.shape[-2] % (2**levels):
            raise ValueError(f"image side {tuple(x.shape[-2:])} must be divisible by 2^{levels} for this U-Net")
        temb = self.time_mlp(timestep_embedding(t, self.cfg.base_width))
        h = self.conv_in(x)
        skips = [h]
        for blocks in self.down:
            h = self._run(blocks, h, temb)
            skips.append(h)
        h = self._run(self.mid, h, temb)
        for blocks in self.up:
            if isinstance(blocks[0], ResBlock):
                h = torch.cat([h, skips.pop()], dim=1)
            h = self._run(blocks, h, temb)
        return self.out(h)
