"""Fixtures of the diffusion tests: one thread, a small digits table, an oracle denoiser."""
from pathlib import Path

import pytest
import torch

from pipeline.studies.diffusion.data import prepare_images


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits_table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("digits") / "images.parquet"
    prepare_images({"source": "digits", "path": None, "image_size": None, "limit": 600, "heldout": 200, "seed": 0,
                    "subsets": "nested"}, path)
    return path


class Oracle(torch.nn.Module):
    """The exact ε-predictor of the empirical distribution of `train`: it memorises perfectly."""

    def __init__(self, diffusion, train: torch.Tensor) -> None:
        super().__init__()
        self.diffusion, self.train_x = diffusion, train.flatten(1)

    def forward(self, xt, t):
        ab = self.diffusion.alpha_bar[t].float().view(-1, 1)
        flat = xt.flatten(1)
        d2 = ((flat[:, None] - ab.sqrt()[:, None] * self.train_x[None]) ** 2).sum(-1)
        w = torch.softmax(-d2 / (2 * (1 - ab)), dim=1)
        x0 = w @ self.train_x
        return ((flat - ab.sqrt() * x0) / (1 - ab).sqrt()).view_as(xt)
