"""DDPM as in the paper: T steps, linear β schedule, ε-prediction with an MSE loss, and the
deterministic DDIM sampler (η = 0) with a configurable number of steps.

Every random draw takes an explicit torch.Generator, so a loss or a set of samples is a
pure function of its seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.runtime import place


@dataclass
class DDPMConfig:
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 2e-2

    def __post_init__(self) -> None:
        if self.T < 2:
            raise ValueError(f"ddpm.T must be >= 2, got {self.T}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(f"ddpm: need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")


class Diffusion:
    """Noise schedule and the forward/backward processes (no learnable parameters)."""

    def __init__(self, cfg: DDPMConfig) -> None:
        self.cfg = cfg
        betas = np.linspace(cfg.beta_start, cfg.beta_end, cfg.T, dtype=np.float64)
        self.betas = torch.from_numpy(betas)
        self.alpha_bar = torch.from_numpy(np.cumprod(1.0 - betas))  # float64, [T]

    @property
    def T(self) -> int:
        return self.cfg.T

    def _coef(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ab = self.alpha_bar.to(x.device)[t].to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
        return ab.sqrt(), (1 - ab).sqrt()

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε."""
        a, s = self._coef(t, x0)
        return a * x0 + s * noise

    def loss_at(self, model: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """MSE between ε and the model's prediction at given steps and noise (mean over all)."""
        return F.mse_loss(model(self.q_sample(x0, t, noise), t), noise)

    def draw(self, x0: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Uniform steps t ∈ {0..T-1} and Gaussian noise for a batch, from one generator."""
        t = torch.randint(0, self.T, (x0.shape[0],), generator=generator)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        return t.to(x0.device), noise.to(x0.device)

    def loss(self, model: nn.Module, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        t, noise = self.draw(x0, generator)
        return self.loss_at(model, x0, t, noise)

    def ddim_timesteps(self, steps: int) -> list[int]:
        if not 1 <= steps <= self.T:
            raise ValueError(f"sampling.ddim_steps must be in 1..{self.T}, got {steps}")
        return sorted({int(round(x)) for x in np.linspace(0, self.T - 1, steps)}, reverse=True)

    @torch.no_grad()
    def ddim_sample(
        self,
        model: nn.Module,
        n: int,
        shape: tuple[int, ...],
        steps: int,
        generator: torch.Generator,
        eta: float = 0.0,
        clip: bool = True,
        batch: int | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """n samples [n, *shape] by DDIM (η = 0: deterministic given the initial noise).

        `clip` clamps the predicted x0 to [-1, 1] at every step (the data range) and
        recomputes ε from it; without that an overfit network's growing ε̂ feeds back
        through x and the samples overflow.
        """
        was_training = model.training
        model.eval()
        xT = torch.randn((n, *shape), generator=generator)
        out = []
        ts = self.ddim_timesteps(steps)
        for i in range(0, n, batch or n):
            x = place(xT[i : i + (batch or n)], device)
            for k, t in enumerate(ts):
                t_prev = ts[k + 1] if k + 1 < len(ts) else -1
                ab = float(self.alpha_bar[t])
                ab_prev = float(self.alpha_bar[t_prev]) if t_prev >= 0 else 1.0
                eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=device))
                x0 = (x - (1 - ab) ** 0.5 * eps) / ab**0.5
                if clip:  # keep x0 in the data range and make ε consistent with it, so x stays bounded
                    x0 = x0.clamp(-1, 1)
                    eps = (x - ab**0.5 * x0) / (1 - ab) ** 0.5
                sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) ** 0.5
                x = ab_prev**0.5 * x0 + max(1 - ab_prev - sigma**2, 0.0) ** 0.5 * eps
                if sigma > 0:
                    x = x + sigma * place(torch.randn(x.shape, generator=generator), device)
            out.append(x.cpu())
        model.train(was_training)
        return torch.cat(out)
