"""Which network a run trains and how to rebuild it from disk.

A model directory holds `model.json` (the architecture spec) and `weights/final.pt` (a plain
state_dict exported by the engine), so evaluation rebuilds exactly what was trained. A spec
is either the spine transformer (`kind: spine`, a TransformerConfig) or a local Hugging Face
LM (`kind: hf`, see hf.py). The codec turns task text into token ids for that model.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch.nn as nn

from pipeline.io import DataError, read_json, write_json
from pipeline.models.transformer import Transformer, TransformerConfig
from pipeline.studies.rlvr.tokenizer import CharTokenizer
from pipeline.train.checkpoint import load_file

SPINE_KEYS = ("d_model", "n_layers", "n_heads", "d_ff", "max_seq_len")


def model_spec(cfg: Mapping[str, Any], vocab_size: int) -> dict[str, Any]:
    """The spec of a `model` config block (spine sizes or an HF path)."""
    if cfg["kind"] == "spine":
        tc = TransformerConfig(vocab_size=vocab_size, **{k: cfg[k] for k in SPINE_KEYS if k in cfg})
        return {"kind": "spine", "config": tc.to_dict()}
    if cfg["kind"] == "hf":
        if not cfg.get("path"):
            raise ValueError("model.kind is 'hf' but model.path is empty")
        return {"kind": "hf", "path": cfg["path"], "chat_template": bool(cfg.get("chat_template", False))}
    raise ValueError(f"model.kind must be 'spine' or 'hf', got {cfg['kind']!r}")


def build(spec: Mapping[str, Any]) -> nn.Module:
    """A freshly initialised (spine) or pretrained (hf) model for `spec`."""
    if spec["kind"] == "spine":
        return Transformer(TransformerConfig(**spec["config"]))
    from pipeline.studies.rlvr.hf import load_hf_model

    return load_hf_model(spec["path"])


def codec(spec: Mapping[str, Any], tokenizer_path: str | os.PathLike):
    """Text ↔ ids for this model: the task's character table, or the HF model's tokenizer."""
    if spec["kind"] == "spine":
        return CharTokenizer.load(tokenizer_path)
    from pipeline.studies.rlvr.hf import load_hf_codec

    return load_hf_codec(spec["path"], spec["chat_template"])


def weights_path(model_dir: str | os.PathLike) -> Path:
    return Path(model_dir) / "weights" / "final.pt"


def save_spec(model_dir: str | os.PathLike, spec: Mapping[str, Any]) -> Path:
    return write_json(dict(spec), Path(model_dir) / "model.json")


def load_spec(model_dir: str | os.PathLike) -> dict[str, Any]:
    spec = read_json(Path(model_dir) / "model.json")
    if not isinstance(spec, dict) or spec.get("kind") not in ("spine", "hf"):
        raise DataError(f"{model_dir}/model.json is not a model spec (want kind spine or hf)")
    return spec


def load_trained(model_dir: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """The model saved in `model_dir`, weights loaded with weights_only=True, in eval mode."""
    spec = load_spec(model_dir)
    model = build(spec)
    state = load_file(weights_path(model_dir))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(f"{weights_path(model_dir)} does not match {model_dir}/model.json: {exc}") from None
    return model.eval(), spec
