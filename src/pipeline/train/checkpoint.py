"""Crash-safe checkpoint directories and the signals that ask for one.

A checkpoint is written into `stepXXXXXXXX.partial/` and renamed to `stepXXXXXXXX/` only when
complete, so a kill at any moment leaves the previous checkpoint intact; leftovers of an
interrupted write are removed on the next start. Loading uses `weights_only=True` and a
corrupt file is an error that names it.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import torch

STEP_DIR = re.compile(r"^step(\d{8})$")


class CheckpointError(RuntimeError):
    """A checkpoint file is truncated, corrupt or not loadable safely."""


def step_dir(ckpt_dir: Path, step: int) -> Path:
    return Path(ckpt_dir) / f"step{step:08d}"


def partial_dir(ckpt_dir: Path, step: int) -> Path:
    return Path(ckpt_dir) / f"step{step:08d}.partial"


def complete(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return sorted(found)


def newest(ckpt_dir: Path) -> tuple[int, Path] | None:
    found = complete(ckpt_dir)
    return found[-1] if found else None


def clean_partial(ckpt_dir: Path) -> None:
    ckpt_dir = Path(ckpt_dir)
    if ckpt_dir.is_dir():
        for p in ckpt_dir.glob("step*.partial"):
            shutil.rmtree(p, ignore_errors=True)


def input_stamps(*paths: str | os.PathLike | None) -> dict[str, list[int]]:
    """Size and modification time of each input file there is (a model name that is not a path is skipped).

    In a fingerprint, they make a run whose inputs were rewritten since its checkpoints were written (an
    upstream job ran again, as when the data changed) start over, as Snakemake re-runs it, instead of
    resuming a model trained on the old inputs; the same test Snakemake applies, and as cheap for a 30 GB model.
    """
    out = {}
    for p in paths:
        if p is not None and os.path.isfile(p):
            st = os.stat(p)
            out[str(p)] = [st.st_size, st.st_mtime_ns]
    return out


def claim(ckpt_dir: Path, fingerprint: str) -> None:
    """Bind a checkpoint directory to a run config; drop checkpoints of a different config."""
    ckpt_dir = Path(ckpt_dir)
    stamp = ckpt_dir / "FINGERPRINT"
    if ckpt_dir.is_dir() and complete(ckpt_dir):
        old = stamp.read_text().strip() if stamp.is_file() else ""
        if old != fingerprint:
            print(f"checkpoints in {ckpt_dir} belong to another config ({old or 'unknown'} != {fingerprint}); "
                  "starting from scratch", flush=True)
            for _, p in complete(ckpt_dir):
                shutil.rmtree(p, ignore_errors=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(ckpt_dir: Path, step: int, keep_last: int) -> Path:
    """Publish a finished partial checkpoint and prune old ones (keep_last <= 0 keeps all)."""
    src, dst = partial_dir(ckpt_dir, step), step_dir(ckpt_dir, step)
    for f in src.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)
    _fsync_dir(Path(ckpt_dir))
    if keep_last > 0:
        for _, old in complete(ckpt_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return dst


def save_state(state: dict[str, Any], ckpt_dir: Path, step: int, keep_last: int = 2) -> Path:
    """Write one-file checkpoints (for loops that do not use DeepSpeed) crash-safely."""
    tmp = partial_dir(ckpt_dir, step)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / "state.pt")
    return commit(ckpt_dir, step, keep_last)


def _deepspeed_data_classes() -> list[type]:
    """Plain data holders DeepSpeed pickles into ZeRO optimizer states (no code runs on load)."""
    try:
        from deepspeed.runtime.fp16.loss_scaler import LossScaler
        from deepspeed.runtime.zero.config import ZeroStageEnum
        from deepspeed.utils.tensor_fragment import fragment_address
    except ImportError:
        return []
    return [LossScaler, ZeroStageEnum, fragment_address]


def load_file(path: Path, map_location: Any = "cpu") -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        with torch.serialization.safe_globals(_deepspeed_data_classes()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot load checkpoint file {path}: {type(exc).__name__}: {exc}") from exc


def load_state(ckpt: Path) -> dict[str, Any]:
    return load_file(Path(ckpt) / "state.pt")


class StopSignal:
    """Turns SIGTERM/SIGUSR1 (SLURM's warning before the time limit) into a flag checked between steps."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.received = signum

    def __enter__(self) -> "StopSignal":
        for s in self.SIGNALS:
            self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
