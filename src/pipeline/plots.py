"""Matplotlib without a display, and figures written atomically."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pipeline.io import atomic_path  # noqa: E402


def savefig(fig: "plt.Figure", path: str | Path, dpi: int = 120) -> Path:
    """Save as PNG (or whatever the suffix says) atomically and close the figure."""
    path = Path(path)
    with atomic_path(path, path.suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def subplots(*args, **kwargs):
    return plt.subplots(*args, **kwargs)
