"""Config validation: every preset passes; every kind of bad value names its key."""
import copy

import pytest
import yaml

from pipeline.config import ConfigError, load_config, validate_config
from tests.conftest import REPO, snakemake

PRESETS = ["config/config.yaml", "config/presets/smoke.yaml", "config/presets/gpu.yaml", "config/presets/paper.yaml"]


def load():
    return load_config()


@pytest.mark.parametrize("path", PRESETS)
def test_presets_validate(path):
    validate_config(load_config(*[p for p in [path] if "presets" in p]))


def set_key(cfg, dotted, value):
    *parents, leaf = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[leaf] = value
    return cfg


@pytest.mark.parametrize("dotted,value,expected", [
    ("studies.gated_attention.train.lrate", 0.1, "studies.gated_attention.train.lrate"),  # unknown key
    ("studies.gated_attention.train.lr", "fast", "studies.gated_attention.train.lr"),  # wrong type
    ("studies.gated_attention.train.lr", -1.0, "studies.gated_attention.train.lr"),  # out of range
    ("studies.gated_attention.model.n_layers", 0, "studies.gated_attention.model.n_layers"),
    ("studies.gated_attention.gate", "additive", "studies.gated_attention.gate"),
    ("studies.nonexistent_study", {"enabled": True}, "studies.nonexistent_study"),  # no such study
    ("studies.gated_attention.text.model.heads", 2, "studies.gated_attention.text.model.heads"),  # not a model key
    # the main task on text: the loss claim is judged on it, so the extra text pair must be off
    ("studies.gated_attention.data.source", "text", "studies.gated_attention.text.enabled"),
    ("data.text.val_fraction", 0.9, "data.text.val_fraction"),
    ("train.device", "tpu", "train.device"),
])
def test_bad_values_name_their_key(dotted, value, expected):
    cfg = set_key(copy.deepcopy(load()), dotted, value)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert expected in str(err.value)


def test_missing_key_is_named():
    cfg = copy.deepcopy(load())
    del cfg["studies"]["gated_attention"]["seeds"]
    with pytest.raises(ConfigError, match="studies.gated_attention.seeds"):
        validate_config(cfg)


def test_snakemake_stops_before_any_job(tmp_path):
    cfg = set_key(copy.deepcopy(load()), "studies.gated_attention.train.lr", "fast")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert "studies.gated_attention.train.lr" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("path", PRESETS)
def test_dry_run_every_preset(tmp_path, path):
    """Every preset builds its DAG as it ships. The paper preset's data paths are placeholders for the
    user's: its dry run names each one and builds the DAG without them."""
    proc = snakemake(tmp_path, "-n", "--configfile", str(REPO / path))
    assert "ga_train" in proc.stdout
    said = proc.stdout + proc.stderr
    keys = ["data.text.corpus", "studies.diffusion.data.path", "studies.hivemind.prompts.infinity_chat.path"]
    assert [k in said and "placeholder" in said for k in keys] == [path.endswith("paper.yaml")] * len(keys)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("key, value", [("data.text.corpus", "/path/to/corpus/*.parquet"),
                                        ("studies.diffusion.data.path", "/path/to/images"),
                                        ("studies.diffusion.data.path", "not/a/folder")])
def test_a_real_run_stops_at_missing_data_before_any_job(tmp_path, key, value):
    """A placeholder only passes a dry run: a real run stops at the DAG build, naming the key (a missing
    image folder used to fail the data job only once the run had started)."""
    cfg = set_key(load_config(REPO / "config/presets/smoke.yaml"), key, value)
    if key.startswith("studies.diffusion"):
        cfg = set_key(cfg, "studies.diffusion.data.source", "folder")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "--cores", "1", "--configfile", str(tmp_path / "c.yaml"), check=False)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"{key}: no " in said and repr(value) in said
    assert ("placeholder" in said) == value.startswith("/path/to/")
    assert not (tmp_path / "results").exists()


def test_schema_defaults_fill_optional_keys_through_refs(tmp_path):
    """A `default` declared in a study's schema file reaches a list entry that omits the key (and only then)."""
    import json

    dialect = "https://json-schema.org/draft/2020-12/schema"
    (tmp_path / "config.schema.json").write_text(json.dumps(
        {"$schema": dialect, "type": "object", "properties": {"models": {"type": "array", "items": {"$ref": "m.schema.json"}}}}))
    (tmp_path / "m.schema.json").write_text(json.dumps(
        {"$schema": dialect, "type": "object", "required": ["name"],
         "properties": {"name": {"type": "string"}, "chat_template": {"type": "boolean", "default": True}}}))
    cfg = {"models": [{"name": "a"}, {"name": "b", "chat_template": False}]}
    validate_config(cfg, tmp_path)
    assert cfg["models"] == [{"name": "a", "chat_template": True}, {"name": "b", "chat_template": False}]
    with pytest.raises(ConfigError, match=r"models\.0\.chat_template"):
        validate_config({"models": [{"name": "a", "chat_template": "yes"}]}, tmp_path)
