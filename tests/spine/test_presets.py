"""Presets are overlays on config/config.yaml: they hold only what differs, and Snakemake merges them as we do."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, canonical, load_config, overlay
from tests.conftest import REPO

PRESETS = sorted((REPO / "config" / "presets").glob("*.yaml"))
# What each overlay is stacked on: the rehearsal rehearses the paper preset.
STACKS = {"rehearsal.yaml": ["paper.yaml"]}


def leaves(tree, prefix=()):
    """(dotted key, value) for every non-dict value of a nested config."""
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, (*prefix, key))
        else:
            yield ".".join((*prefix, key)), value


def lookup(config, dotted):
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_a_preset_restates_no_value_it_is_stacked_on(preset):
    below = load_config(*[REPO / "config/presets" / name for name in STACKS.get(preset.name, [])])
    restated = []
    for dotted, value in leaves(yaml.safe_load(preset.read_text())):
        try:
            if lookup(below, dotted) == value:
                restated.append(dotted)
        except (KeyError, TypeError):
            pass  # a key below it does not have: the schema decides whether it may exist
    assert not restated, f"{preset.name} restates values it inherits (delete them): {restated}"


def test_overlay_merges_dicts_and_replaces_everything_else():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 3}
    assert overlay(base, {"a": {"c": [9]}, "d": None}) == {"a": {"b": 1, "c": [9]}, "d": None}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 3}  # the base is not modified


def test_canonical_order_does_not_depend_on_the_files():
    a = {"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": 0}
    b = {"a": 0, "b": {"x": [{"p": 2, "q": 1}], "y": 1}}
    assert repr(canonical(a)) == repr(canonical(b))  # Snakemake compares params by repr
    assert repr(a) != repr(b)


def test_restating_check_catches_a_restated_default(tmp_path):
    default = yaml.safe_load(DEFAULT_CONFIG.read_text())
    bad = {"studies": {"gated_attention": {"seeds": default["studies"]["gated_attention"]["seeds"]}}}
    restated = [d for d, v in leaves(bad) if lookup(default, d) == v]
    assert restated == ["studies.gated_attention.seeds"]


@pytest.mark.slow
@pytest.mark.parametrize("stack", [["paper.yaml"], ["paper.yaml", "rehearsal.yaml"]], ids="+".join)
def test_snakemake_sees_the_same_config_as_load_config(tmp_path, stack):
    """The jobs' config (Snakemake's merge of the default and the overlays) equals load_config's."""
    presets = [REPO / "config/presets" / name for name in stack]
    snakefile = tmp_path / "Snakefile"
    out = tmp_path / "config.json"
    snakefile.write_text(
        f'configfile: "{DEFAULT_CONFIG}"\n'
        f'import json\nopen("{out}", "w").write(json.dumps(config, sort_keys=True))\n'
        'rule all:\n    input: []\n')
    exe = Path(sys.executable).parent / "snakemake"
    subprocess.run([str(exe), "-s", str(snakefile), "-d", str(tmp_path), "-n", "--configfile", *map(str, presets)],
                   check=True, capture_output=True)
    assert json.loads(out.read_text()) == json.loads(json.dumps(load_config(*presets), sort_keys=True))
