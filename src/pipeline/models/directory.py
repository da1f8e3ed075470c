"""The one model-directory format: `model.json` (what to build) and `weights/final.pt` (a plain state_dict).

Written by the RLVR runs (and any study that exports a spine model), read by RLVR's evaluation and by the
hivemind population, so that evaluation rebuilds exactly what was trained. `model.json` is
{"kind": "spine", "config": TransformerConfig} or {"kind": "hf", "path", "chat_template", "dtype"}.
Weights load with `weights_only=True` (pipeline.train.checkpoint.load_file).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from pipeline.io import DataError, read_json, write_json

KINDS = ("spine", "hf")


def weights_path(model_dir: str | os.PathLike) -> Path:
    return Path(model_dir) / "weights" / "final.pt"


def spec_path(model_dir: str | os.PathLike) -> Path:
    return Path(model_dir) / "model.json"


def save_spec(model_dir: str | os.PathLike, spec: Mapping[str, Any]) -> Path:
    return write_json(dict(spec), spec_path(model_dir))


def load_spec(model_dir: str | os.PathLike, kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    """The directory's model.json, refused unless its kind is one of `kinds`."""
    spec = read_json(spec_path(model_dir))
    if not isinstance(spec, dict) or spec.get("kind") not in kinds:
        raise DataError(f"{spec_path(model_dir)} is not a model spec (want kind {' or '.join(kinds)})")
    return spec


def load_weights(model, model_dir: str | os.PathLike):
    """`model` with the directory's weights loaded, a mismatch named by both files."""
    from pipeline.train.checkpoint import load_file

    try:
        model.load_state_dict(load_file(weights_path(model_dir)))
    except RuntimeError as exc:
        raise DataError(f"{weights_path(model_dir)} does not match {spec_path(model_dir)}: {exc}") from None
    return model


def load_spine(model_dir: str | os.PathLike):
    """The spine transformer saved in `model_dir`, in eval mode."""
    from pipeline.models.transformer import Transformer, TransformerConfig

    spec = load_spec(model_dir, ("spine",))
    return load_weights(Transformer(TransformerConfig(**spec["config"])), model_dir).eval()
