"""A small classifier trained on the study's own images, whose features define the Fréchet
distance used for sample quality (no Inception weights are available offline).

The task is digit/class labels when the data has them, else self-supervised rotation
prediction (0/90/180/270°), so an unlabeled folder such as CelebA still gets a feature
space. Features are the penultimate layer. Training is a plain seeded Adam loop: the model
is tiny and trains in seconds, so the distributed engine would add only start-up cost.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.io import DataError, atomic_path, read_json, write_json
from pipeline.progress import progress
from pipeline.studies.diffusion.data import read_images, to_model_space

TASKS = ("auto", "labels", "rotation")


class FeatureNet(nn.Module):
    """conv(w) → conv(2w, /2) → conv(4w, /2) → global mean → Linear(dim) → classes."""

    def __init__(self, n_classes: int, width: int = 16, dim: int = 64) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.SiLU(),
        )
        self.embed = nn.Linear(4 * w, dim)
        self.head = nn.Linear(dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.embed(self.body(x).mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _task(labels: np.ndarray, task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"features.task must be one of {TASKS}, got {task!r}")
    has_labels = (labels >= 0).all() and len(np.unique(labels)) >= 2
    if task == "labels" and not has_labels:
        raise DataError("features.task is 'labels' but the images have no class labels (use rotation or auto)")
    return "labels" if task == "labels" or (task == "auto" and has_labels) else "rotation"


def _batch(x: torch.Tensor, y: torch.Tensor | None, idx: torch.Tensor, rot: torch.Tensor | None):
    xb = x[idx]
    if rot is None:
        return xb, y[idx]
    return torch.stack([torch.rot90(im, int(k), dims=(1, 2)) for im, k in zip(xb, rot)]), rot


@torch.no_grad()
def _accuracy(model: FeatureNet, x: torch.Tensor, y: np.ndarray, task: str, seed: int) -> float:
    model.eval()
    if task == "labels":
        pred = model(x).argmax(1).numpy()
        return float((pred == y).mean())
    g = torch.Generator().manual_seed(seed)
    rot = torch.randint(0, 4, (x.shape[0],), generator=g)
    xb, yb = _batch(x, None, torch.arange(x.shape[0]), rot)
    return float((model(xb).argmax(1) == yb).float().mean())


def train_feature_net(images_path: str | Path, out_weights: str | Path, out_meta: str | Path, cfg: Mapping[str, Any]) -> dict:
    """Train on the pool split, report accuracy on the held-out split, save weights + meta."""
    seed = int(cfg["seed"])
    torch.manual_seed(seed)
    x_img, y = read_images(images_path, split="pool")
    xh_img, yh = read_images(images_path, split="heldout")
    task = _task(np.concatenate([y, yh]), cfg["task"])
    n_classes = int(max(y.max(), yh.max()) + 1) if task == "labels" else 4
    x, yt = to_model_space(x_img), torch.tensor(y)
    model = FeatureNet(n_classes, int(cfg["width"]), int(cfg["dim"]))
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    g = torch.Generator().manual_seed(seed)
    bs = min(int(cfg["batch"]), x.shape[0])
    model.train()
    for _ in progress(range(int(cfg["steps"])), desc="feature classifier"):
        idx = torch.randint(0, x.shape[0], (bs,), generator=g)
        rot = torch.randint(0, 4, (bs,), generator=g) if task == "rotation" else None
        xb, yb = _batch(x, yt, idx, rot)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = _accuracy(model, to_model_space(xh_img), yh, task, seed) if len(xh_img) else float("nan")
    meta = {"task": task, "n_classes": n_classes, "width": int(cfg["width"]), "dim": int(cfg["dim"]),
            "heldout_accuracy": acc, "train_images": int(x.shape[0]), "steps": int(cfg["steps"])}
    with atomic_path(out_weights, ".pt") as tmp:
        torch.save(model.state_dict(), tmp)
    write_json(meta, out_meta)
    return meta


def load_feature_net(weights: str | Path, meta_path: str | Path) -> FeatureNet:
    meta = read_json(meta_path)
    model = FeatureNet(int(meta["n_classes"]), int(meta["width"]), int(meta["dim"]))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


@torch.no_grad()
def embed(model: FeatureNet, x: torch.Tensor, batch: int = 1024) -> np.ndarray:
    """Penultimate-layer features [N, dim] of images in model space."""
    return torch.cat([model.features(x[i : i + batch]) for i in range(0, x.shape[0], batch)]).numpy()
