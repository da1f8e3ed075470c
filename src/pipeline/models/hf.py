"""Hugging Face causal LMs, loaded one way for every study (RLVR base and teacher, hivemind population).

What a user's model directory or GGUF file needs to behave as its authors meant:
- **stop ids**: generation ends on any end id the model names — the union of its generation
  config's `eos_token_id` (an int or a list: Qwen's `<|im_end|>` and `<|endoftext|>`, Llama 3's
  `<|eot_id|>` ...), its config.json's and the tokenizer's `eos_token_id`;
- **end of turn**: the id a chat-formatted answer ends with (what SFT targets are closed with):
  the stop id the chat template writes after an assistant turn, else the tokenizer's EOS;
- **dtype**: weights are loaded in the dtype asked for (`auto`: bfloat16 on a GPU, float32 on CPU);
- **chat template**: asking for it with a tokenizer that has none stops the DAG build
  (`store.check_chat_template`), and the same check runs again when a job loads the tokenizer —
  one behaviour for both studies, never a silent fallback to plain text.

A GGUF file is converted once into a Hugging Face directory (`gguf_as_directory`) and every load reads that.

transformers is imported inside the functions: the DAG build never pays for it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

import torch

from pipeline.models import store
from pipeline.runtime import place

DTYPES = ("auto", "float32", "bfloat16", "float16")


def torch_dtype(name: str, device: torch.device | str | None = None) -> torch.dtype:
    """The torch dtype of a config value; `auto` is bfloat16 on CUDA and float32 elsewhere
    (device None: where the model will run, a GPU when there is one)."""
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {name!r}")
    if name == "auto":
        cuda = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
        return torch.bfloat16 if cuda else torch.float32
    return getattr(torch, name)


CACHE_ENV = "PIPELINE_CACHE"


def cache_root() -> Path:
    """$PIPELINE_CACHE, else $XDG_CACHE_HOME/pipeline, else ~/.cache/pipeline (as Hugging Face keeps its cache)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pipeline"


def gguf_as_directory(gguf: Path) -> Path:
    """The model of `gguf` as a Hugging Face directory (float32 weights and its tokenizer), converted once.

    Why: transformers parses a GGUF file's metadata in Python and maps every tensor name anew at each
    load, ~20 s of CPU for SmolLM2-135M, paid by every job that loads it (an RLVR evaluation loads it
    twice); the directory loads in about a second, with the same weights and tokenizer
    (tests/spine/test_hf_models.py). Keyed by the file (path, size, mtime) and the transformers version;
    written to a temporary folder and renamed, so concurrent jobs never read half a conversion.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, __version__

    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{__version__}".encode()).hexdigest()
    target = cache_root() / "gguf" / f"{gguf.stem}-{key[:16]}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(tmp)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # The weights are already dequantised; transformers only refuses to save a model that came from a GGUF.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # not another job's finished conversion: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def model_directory(path: str) -> Path:
    """The Hugging Face directory to load the model at `path` from (a GGUF file's converted copy)."""
    store.offline()
    directory, gguf = store.resolve(path)
    return gguf_as_directory(directory / gguf) if gguf else directory


def load_tokenizer(path: str, chat_template: bool = False, key: str = "chat_template"):
    """The tokenizer of the model at `path`; with `chat_template`, one that has a template."""
    from transformers import AutoTokenizer

    if chat_template:
        store.check_chat_template(path, key)
    return AutoTokenizer.from_pretrained(str(model_directory(path)))


def load_model(path: str, dtype: str, device: torch.device | str | None = None) -> torch.nn.Module:
    """The causal LM at `path` in `dtype`, on `device` (None: the CPU, for the caller to move), in eval mode."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(str(model_directory(path)), dtype=torch_dtype(dtype, device))
    return place(model, device or "cpu").eval()


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


def stop_ids(path: str, tokenizer) -> tuple[int, ...]:
    """Every end id of the model at `path` (see the module docstring), sorted; error if none."""
    directory = model_directory(path)
    ids = set(_ids(tokenizer.eos_token_id))
    for name in ("generation_config.json", "config.json"):  # (a GGUF's converted copy has both, from its metadata)
        f = directory / name
        if f.is_file():
            ids.update(_ids(json.loads(f.read_text()).get("eos_token_id")))
    if not ids:
        raise ValueError(f"the model at {path!r} names no end-of-sequence token: completions could never end")
    return tuple(sorted(ids))


def chat_ids(tokenizer, turns: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(turns, add_generation_prompt=generation_prompt, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def end_of_turn_id(tokenizer, stops: Iterable[int], chat_template: bool) -> int:
    """The id that closes an answer: the first stop id the chat template writes after an
    assistant turn (Qwen's `<|im_end|>`), else the tokenizer's EOS (else the first stop id)."""
    stops = list(stops)
    if chat_template:
        user = [{"role": "user", "content": "1+1?"}]
        head = chat_ids(tokenizer, user, True)
        full = chat_ids(tokenizer, [*user, {"role": "assistant", "content": "2"}], False)
        tail = full[len(head):] if full[:len(head)] == head else full
        end = next((t for t in tail if t in stops), None)
        if end is not None:
            return int(end)
    return int(tokenizer.eos_token_id) if tokenizer.eos_token_id is not None else stops[0]


def cut_at_stop(ids: Iterable[int], stops: Iterable[int]) -> tuple[list[int], bool]:
    """(the ids before the first stop id, whether there was one)."""
    stops = set(stops)
    out = []
    for i in ids:
        if int(i) in stops:
            return out, True
        out.append(int(i))
    return out, False
