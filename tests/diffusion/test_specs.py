"""The diffusion specs: built from the validated config in one place, nothing that changes no number inside."""
import copy
import dataclasses

import pytest

from pipeline import job
from pipeline.config import ConfigError, as_params, load_config, validate_config
from pipeline.studies.diffusion import plan, specs

from tests.conftest import SMOKE


@pytest.fixture(scope="module")
def config():
    return validate_config(load_config(SMOKE))


WC = {"df_n": "8", "seed": "0", "df_step": "00000020"}


def builders(config):
    return [specs.data(config), specs.subset(config, WC), specs.features(config),
            specs.train(config, WC, "sub.parquet", "run", "run/exports"), specs.evaluate(config, WC),
            specs.random_features(config), specs.analyse(config), specs.figures(config)]


def test_every_spec_survives_the_trip_through_a_rules_params(config):
    for spec in builders(config):
        assert job.spec_from(type(spec), as_params(spec)) == spec
        assert not {"threads", "tracking"} & {f.name for f in dataclasses.fields(spec)}, type(spec).__name__


def test_values_come_from_the_config_and_wildcards(config):
    df = config["studies"]["diffusion"]
    tr, ev = specs.train(config, WC, "sub.parquet", "run", "run/exports"), specs.evaluate(config, WC)
    assert tr.device == ev.device == config["train"]["device"]
    assert (tr.n, tr.seed, ev.step, ev.eval_seed) == (8, 0, 20, df["eval_seed"])
    assert specs.subset(config, WC) == specs.SubsetSpec(n=8, seed=0, mode=df["data"]["subsets"], data_seed=df["data"]["seed"])
    fig = specs.figures(config)
    steps = plan.export_steps(specs.grid_n(df), df)
    assert (fig.early_step, fig.late_step) == (steps[0], steps[-1]) and specs.grid_n(df) == min(df["sizes"])
    with pytest.raises(ValueError, match="unknown field"):
        job.spec_from(specs.EvalSpec, {**as_params(ev), "threads": 1})


def test_cross_field_checks_name_the_keys(config):
    df = copy.deepcopy(config["studies"]["diffusion"])
    specs.check(df)
    with pytest.raises(ValueError, match="figures.grid_n=3"):
        specs.check({**df, "figures": {"grid_n": 3}})
    with pytest.raises(ValueError, match="must not repeat"):
        specs.check({**df, "seeds": [0, 0]})


@pytest.mark.parametrize("path", [("sampling", "clip"), ("sampling", "batch"), ("memorization", "chunk"),
                                  ("features", "task"), ("features", "seed"), ("data", "heldout"), ("data", "seed"),
                                  ("random_features", "seed"), ("model", "mlp", "t_dim"), ("eval_seed",)])
def test_what_the_code_once_defaulted_is_a_required_key(path):
    cfg = load_config(SMOKE)
    node = cfg["studies"]["diffusion"]
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    with pytest.raises(ConfigError, match="studies.diffusion." + ".".join(path)):
        validate_config(cfg)
