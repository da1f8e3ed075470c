"""Per-process runtime settings every job applies first: threads, device, determinism.

The one home for devices: `resolve` turns train.device (cpu | cuda | auto) into a torch.device with a
clear error, and `place` is how every model and tensor a job builds reaches that device. A scattered
`.to(...)` is how the RLVR KL reference once stayed on the CPU while the policy ran on the GPU.
"""
from __future__ import annotations

import os
import random
from typing import Any, TypeVar

import numpy as np
import torch

T = TypeVar("T")


class DeviceError(RuntimeError):
    """The config asks for a device this machine does not have."""


def resolve(device: str | torch.device = "auto") -> torch.device:
    """'cpu' | 'cuda' | 'cuda:N' | 'auto' → a torch.device; 'cuda' without a visible GPU is an error."""
    if isinstance(device, torch.device):
        return device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"train.device is {device!r} but no CUDA GPU is visible to this job "
                          "(run on a GPU node, or set train.device: cpu / auto)")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def place(obj: T, device: str | torch.device) -> T:
    """`obj` on `device`: a module (in place, returned), a tensor, or a dict/list/tuple of them; others as they are."""
    device = resolve(device)
    if isinstance(obj, (torch.nn.Module, torch.Tensor)):
        return obj.to(device)
    if isinstance(obj, dict):
        return type(obj)((k, place(v, device)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(place(v, device) for v in obj)
    if hasattr(obj, "to") and callable(obj.to) and hasattr(obj, "keys"):  # a tokenizer's BatchEncoding
        return obj.to(device)
    return obj


def device_of(module: torch.nn.Module) -> torch.device:
    """Where a model's parameters live (the CPU for a model without any)."""
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def setup(threads: int, device: str = "cpu", seed: int | None = None) -> torch.device:
    """Apply thread count and seeds; resolve the device (see `resolve`)."""
    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    resolved = resolve(device)
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
    return resolved
