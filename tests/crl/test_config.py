"""The study's config: schema, presets, parsing errors, the networks to train."""
import json
from pathlib import Path

import jsonschema
import pytest

from pipeline.config import load_config
from pipeline.studies.crl.config import ConfigError, networks, parse, parse_run, run_block
from pipeline.studies.crl.sizing import Dims, agent_params

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "workflow/schemas/crl.schema.json").read_text())


@pytest.mark.parametrize("preset", ["config/config.yaml", "config/presets/smoke.yaml", "config/presets/gpu.yaml",
                                    "config/presets/paper.yaml"])
def test_every_preset_block_matches_the_schema_and_parses(preset):
    block = load_config(*([] if preset == "config/config.yaml" else [preset]))["studies"]["crl"]
    jsonschema.Draft202012Validator(SCHEMA).validate(block)
    cfg = parse(block)
    parse_run(run_block(block))
    assert len(networks(cfg)) >= len(cfg.network.depths)


def test_schema_is_valid_and_closed():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False


@pytest.mark.parametrize("edit, key", [
    (lambda b: b["algo"].pop("gamma"), "studies.crl.algo.gamma"),
    (lambda b: b["algo"].update(bogus=1), "studies.crl.algo.bogus"),
    (lambda b: b["network"].update(depths=[4, 6]), "studies.crl.network.depths"),
    (lambda b: b["algo"].update(gamma=1.0), "studies.crl.algo.gamma"),
    (lambda b: b["env"].update(backend="gymnasium"), "studies.crl.env.gym_id"),
])
def test_bad_values_name_the_key(smoke_block, edit, key):
    edit(smoke_block)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse(smoke_block)


def test_width_controls_match_the_parameter_count_of_the_deep_net(smoke_block):
    smoke_block["network"].update(width=64, depths=[4, 8, 16, 32])
    smoke_block["width_control"].update(depth=4, match_depths=[16, 32])
    nets = {n["name"]: n for n in networks(parse(smoke_block))}
    dims = Dims(2, 2, 2)
    for n in nets.values():
        assert n["params"] == agent_params(dims, n["width"], n["depth"], 16)["total"]
    controls = [n for n in nets.values() if n["kind"] == "width"]
    assert [c["matches"] for c in controls] == [16, 32]
    for c in controls:
        deep = nets[f"d{c['matches']}_w64"]["params"]
        assert c["depth"] == 4 and abs(c["params"] - deep) / deep < 0.02


def test_run_block_leaves_out_what_does_not_change_training(smoke_block):
    a = run_block(smoke_block)
    smoke_block["network"]["depths"] = [4, 8, 16, 32]
    smoke_block["seeds"] = [0, 1, 2, 3]
    smoke_block["claims"]["jump_min"] = 0.3
    smoke_block["train"]["gpus_per_rank"] = 1
    assert run_block(smoke_block) == a
