"""The jobs' specs: built from the validated config, only what changes a result, and the entry point runs one."""
import json

import pytest

from pipeline import job
from pipeline.config import as_params, canonical, load_config, validate_config
from pipeline.studies.crl import specs
from pipeline.studies.crl.config import parse, run_block, run_config
from pipeline.studies.crl.specs import AnalyseSpec, RunSpec, TrainSpec
from pipeline.studies.crl.train import main, run
from pipeline.train.checkpoint import load_file


@pytest.fixture
def config() -> dict:
    return canonical(validate_config(load_config("config/presets/smoke.yaml")))


def test_specs_come_from_the_config(config):
    nets = specs.networks(config)
    assert set(nets) == {"d4_w16", "d8_w16", "d4_w23"}
    wc = {"crl_net": "d4_w23", "seed": "1"}
    t = specs.train(config, wc, "results/crl/runs/d4_w23/seed1")
    assert (t.depth, t.width, t.seed, t.out_dir) == (4, 23, 1, "results/crl/runs/d4_w23/seed1")
    assert t.run_cfg == run_block(config["studies"]["crl"]) and t.device == config["train"]["device"]
    e = specs.evaluate(config, wc)
    assert isinstance(e, RunSpec) and not isinstance(e, TrainSpec)
    assert {k: v for k, v in vars(t).items() if k != "out_dir"} == vars(e)
    a = specs.analyse(config)
    assert a.cfg == config["studies"]["crl"] and a.scale == config["scale"]


def test_specs_round_trip_through_a_rules_params(config):
    wc = {"crl_net": "d8_w16", "seed": "0"}
    for cls, spec in ((TrainSpec, specs.train(config, wc, "out")), (RunSpec, specs.evaluate(config, wc)),
                      (AnalyseSpec, specs.analyse(config))):
        assert job.spec_from(cls, json.loads(json.dumps(as_params(spec)))) == spec
    with pytest.raises(ValueError, match="unknown field.*threads"):
        job.spec_from(TrainSpec, {**as_params(specs.train(config, wc, "out")), "threads": 1})


def test_threads_and_tracking_change_no_spec(config):
    wc = {"crl_net": "d4_w16", "seed": "0"}
    before = [specs.train(config, wc, "out"), specs.evaluate(config, wc), specs.analyse(config)]
    config["train"]["threads"] += 3
    config["tracking"]["enabled"] = not config["tracking"]["enabled"]
    assert [specs.train(config, wc, "out"), specs.evaluate(config, wc), specs.analyse(config)] == before


def test_entry_point_trains_the_same_numbers_as_run(tmp_path, smoke_block):
    smoke_block["env"]["episode_length"] = 20
    smoke_block["algo"].update(num_envs=8, unroll_length=20, updates_per_round=2, batch_size=16, buffer_size=60,
                               min_replay=20, total_env_steps=640)
    smoke_block["evaluation"].update(episodes=4, hard_episodes=2)
    spec = TrainSpec(run_cfg=run_block(smoke_block), depth=4, width=16, seed=2, device="cpu",
                     out_dir=str(tmp_path / "main"))
    main(as_params(spec))  # as pipeline.launch calls it (PIPELINE_RUNTIME and PIPELINE_JOB: tests/conftest.py)
    run(run_config(parse(smoke_block)), depth=4, width=16, seed=2, out_dir=tmp_path / "run")
    a, b = load_file(tmp_path / "main/final.pt"), load_file(tmp_path / "run/final.pt")
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
