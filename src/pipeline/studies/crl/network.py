"""The paper's residual MLP: depth is the number of Dense layers inside residual blocks.

Dense→LayerNorm→Swish, then depth/4 blocks of 4×(Dense→LayerNorm→Swish) with the skip added
after the 4th activation, then a Dense output layer. Kernels are lecun-uniform
(U(±1/√fan_in), flax's variance_scaling(1/3, fan_in, uniform)), biases zero, LayerNorm ε 1e-6
as in flax — the same network as `wang-kevin3290/scaling-crl`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from pipeline.studies.crl.sizing import check_depth


def lecun_uniform_(layer: nn.Linear) -> nn.Linear:
    bound = 1.0 / math.sqrt(layer.in_features)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)
    return layer


class DenseNormAct(nn.Sequential):
    def __init__(self, in_dim: int, width: int) -> None:
        super().__init__(lecun_uniform_(nn.Linear(in_dim, width)), nn.LayerNorm(width, eps=1e-6), nn.SiLU())


class ResidualBlock(nn.Module):
    """Four Dense→LayerNorm→Swish layers; the input is added after the fourth activation."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(DenseNormAct(width, width) for _ in range(4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) + x


class ResidualMLP(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int) -> None:
        super().__init__()
        check_depth(depth)
        self.depth, self.width = depth, width
        self.stem = DenseNormAct(in_dim, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(depth // 4)))
        self.head = lecun_uniform_(nn.Linear(width, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def dense_layers_in_blocks(self) -> int:
        return sum(isinstance(m, nn.Linear) for m in self.blocks.modules())
