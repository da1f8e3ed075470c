"""Which network a run trains and how to rebuild it from disk.

Runs are saved as model directories (`pipeline.models.directory`: `model.json` + `weights/final.pt`),
so evaluation rebuilds exactly what was trained. A spec
is either the spine transformer (`kind: spine`, a TransformerConfig) or a local Hugging Face
LM (`kind: hf`, see hf.py). The codec turns task text into token ids for that model.
torch is imported where a model is built: the DAG build checks specs without it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pipeline.models.chars import CharTokenizer
from pipeline.models.directory import load_spec, load_weights

if TYPE_CHECKING:
    import torch.nn as nn

SPINE_KEYS = ("d_model", "n_layers", "n_heads", "max_seq_len")  # d_ff: the TransformerConfig default (SwiGLU ≈ 8/3·d_model)


def model_spec(cfg: Mapping[str, Any], vocab_size: int) -> dict[str, Any]:
    """The spec of a `model` config block (spine sizes or an HF path)."""
    if cfg["kind"] == "spine":
        from pipeline.models.transformer import TransformerConfig

        tc = TransformerConfig(vocab_size=vocab_size, **{k: cfg[k] for k in SPINE_KEYS})
        return {"kind": "spine", "config": tc.to_dict()}
    if cfg["kind"] == "hf":
        if not cfg["path"]:
            raise ValueError("model.kind is 'hf' but model.path is empty")
        return {"kind": "hf", "path": cfg["path"], "chat_template": bool(cfg["chat_template"]), "dtype": cfg["dtype"]}
    raise ValueError(f"model.kind must be 'spine' or 'hf', got {cfg['kind']!r}")


def build(spec: Mapping[str, Any], dtype: str | None = None) -> nn.Module:
    """A freshly initialised (spine) or pretrained (hf) model for `spec`; an HF model's weights in
    `dtype` (None: the spec's model.dtype, for inference; training passes float32, the master
    weights the engine keeps whatever its compute precision)."""
    if spec["kind"] == "spine":
        from pipeline.models.transformer import Transformer, TransformerConfig

        return Transformer(TransformerConfig(**spec["config"]))
    from pipeline.studies.rlvr.hf import load_hf_model

    return load_hf_model(spec["path"], dtype or spec["dtype"])


def codec(spec: Mapping[str, Any], tokenizer_path: str | os.PathLike):
    """Text ↔ ids for this model: the task's character table, or the HF model's tokenizer."""
    if spec["kind"] == "spine":
        return CharTokenizer.load(tokenizer_path)
    from pipeline.studies.rlvr.hf import load_hf_codec

    return load_hf_codec(spec["path"], spec["chat_template"])


def same_tokenizer(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two model specs share token ids: spine models share the task's character table;
    HF models are taken to share one only when they are the same path."""
    return a["kind"] == b["kind"] and (a["kind"] == "spine" or a["path"] == b["path"])


def check_teacher(base: Mapping[str, Any], teacher: Mapping[str, Any]) -> None:
    """Refuse (at DAG build) a teacher the base cannot score or learn from: an HF teacher of a
    spine base writes text outside the task's character table. Any other pair is scored on
    text, re-tokenised under the base (evaluate.score_with_base)."""
    if base["kind"] == "spine" and teacher["kind"] == "hf":
        raise ValueError("studies.rlvr.teacher.model.kind is 'hf' but studies.rlvr.model.kind is 'spine': the "
                         "base's character tokenizer cannot encode a pretrained teacher's text, so its completions "
                         "could be neither scored by the base nor distilled into it (make the base an hf model too)")


def load_trained(model_dir: str | os.PathLike, dtype: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The model saved in `model_dir`, weights loaded with weights_only=True, in eval mode (dtype: see build)."""
    spec = load_spec(model_dir)
    return load_weights(build(spec, dtype), model_dir).eval(), spec
