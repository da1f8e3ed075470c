"""Per-process runtime settings every job applies first: threads, device, determinism."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


class DeviceError(RuntimeError):
    """The config asks for a device this machine does not have."""


def setup(threads: int, device: str = "cpu", seed: int | None = None) -> torch.device:
    """Apply thread count and seeds; resolve 'cpu' | 'cuda' | 'auto' with a clear error."""
    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("train.device is 'cuda' but no CUDA GPU is visible to this job "
                          "(run on a GPU node, or set train.device: cpu / auto)")
    resolved = torch.device("cuda" if device in ("cuda", "auto") and torch.cuda.is_available() else "cpu")
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
    return resolved
