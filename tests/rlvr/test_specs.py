"""The RLVR specs: built from the validated config in one place, rebuilt strictly by the jobs, and checked across fields."""
import copy
import dataclasses

import pytest

from pipeline.config import as_params, load_config, validate_config
from pipeline.job import spec_from
from pipeline.models import directory
from pipeline.studies.rlvr import runs, specs

from tests.conftest import SMOKE


@pytest.fixture
def config():
    return validate_config(load_config(SMOKE))


def builders(config):
    return [specs.data(config), specs.base(config), specs.teacher(config), specs.distill(config, {"seed": "0"}),
            specs.rl(config, {"rlvr_algo": "grpo", "seed": "0"}), specs.teacher_data(config),
            specs.evaluate(config, {"rlvr_model": "rloo-s0"}), specs.analyse(config), specs.figures(config)]


def test_every_spec_survives_the_trip_through_a_rule_param(config):
    for spec in builders(config):
        assert dataclasses.is_dataclass(spec)
        assert spec_from(type(spec), as_params(spec)) == spec
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(spec, dataclasses.fields(spec)[0].name, None)


def test_specs_hold_no_runtime_settings(config):
    for spec in builders(config):
        assert not {"threads", "tracking", "rule", "wildcards"} & {f.name for f in dataclasses.fields(spec)}


def test_training_specs_start_where_their_rule_says(config):
    block = config["studies"]["rlvr"]
    base, teacher = specs.base(config), specs.teacher(config)
    assert base.model == block["model"] and base.init is None and base.seed == block["base"]["seed"]
    assert teacher.model == block["teacher"]["model"] and teacher.train == block["teacher"]["train"]
    student = specs.distill(config, {"seed": "3"})
    assert (student.init, student.model, student.data, student.seed) == (specs.model_dir("base"), None,
                                                                         specs.TEACHER_DATA, 3)
    rl = specs.rl(config, {"rlvr_algo": "rloo", "seed": "1"})
    assert rl.out_dir == specs.model_dir("rloo-s1") and rl.init == specs.model_dir("base")
    assert rl.rl == {"algorithm": "rloo", "group_size": block["rl"]["group_size"], "kl_coef": block["rl"]["kl_coef"],
                     "temperature": block["rl"]["temperature"], "top_p": block["rl"]["top_p"],
                     "max_new_tokens": block["sampling"]["max_new_tokens"]}
    assert rl.config_key == "studies.rlvr.rl.train" and rl.checker == "strict"


def test_an_evaluation_spec_holds_no_analysis_setting(config):
    """k_max shapes the curves, not the samples: changing it re-runs the analysis only."""
    ev = specs.evaluate(config, {"rlvr_model": "base"})
    assert "k_max" not in ev.eval and ev.model_dir == ev.base_dir == specs.model_dir("base")


def test_the_fingerprint_follows_what_decides_the_trajectory(config):
    spec = specs.rl(config, {"rlvr_algo": "grpo", "seed": "0"})
    assert runs.fingerprint(spec) == runs.fingerprint(specs.rl(copy.deepcopy(config), {"rlvr_algo": "grpo", "seed": "0"}))
    for change in ({"seed": 1}, {"rl": {**spec.rl, "kl_coef": 0.5}}, {"train": {**spec.train, "lr": 0.1}},
                   {"device": "cuda"}, {"init": "elsewhere"}):
        assert runs.fingerprint(dataclasses.replace(spec, **change)) != runs.fingerprint(spec), change


def test_a_rewritten_input_changes_the_fingerprint(config, tmp_path):
    """Re-running the data or base job keeps the paths but changes the inputs: checkpoints of the old ones
    must not be resumed (a changed n_heldout once resumed a base trained on the old split)."""
    data, weights = tmp_path / "train.parquet", directory.weights_path(tmp_path / "base")
    weights.parent.mkdir(parents=True)
    data.write_bytes(b"old rows")
    weights.write_bytes(b"old weights")
    spec = dataclasses.replace(specs.rl(config, {"rlvr_algo": "grpo", "seed": "0"}), data=str(data),
                               init=str(tmp_path / "base"))
    before = runs.fingerprint(spec)
    assert runs.fingerprint(spec) == before  # a job killed and re-run on the same inputs resumes
    for path in (data, weights):
        path.write_bytes(path.read_bytes() + b", rewritten")
        assert runs.fingerprint(spec) != before, path
        before = runs.fingerprint(spec)


def test_the_model_list_names_every_evaluated_model(config):
    assert specs.model_names(config) == ["base", "teacher", "distill-s0", "grpo-s0", "rloo-s0"]


def changed(config, block, **values):
    out = copy.deepcopy(config)
    out["studies"]["rlvr"][block].update(values)
    return out


@pytest.mark.parametrize("block,values,message", [
    ("eval", {"n_samples": 6, "k_max": 4}, r"studies\.rlvr\.eval\.n_samples=6 must be at least"),
    ("distill", {"n_prompts": 401}, r"studies\.rlvr\.distill\.n_prompts=401 exceeds studies\.rlvr\.task\.n_train=400"),
    ("task", {"source": "file", "path": None}, r"studies\.rlvr\.task\.path is null"),
    ("sampling", {"max_new_tokens": 12}, r"studies\.rlvr\.model\.max_seq_len=16 cannot hold"),
])
def test_check_names_the_keys_of_a_bad_combination(config, block, values, message):
    specs.check(config)  # the smoke preset is consistent
    with pytest.raises(ValueError, match=message):
        specs.check(changed(config, block, **values))


def test_check_refuses_an_hf_teacher_of_a_spine_base(config):
    bad = copy.deepcopy(config)
    bad["studies"]["rlvr"]["teacher"]["model"].update(kind="hf", path="package:no_such_package")
    with pytest.raises(ValueError, match="teacher.model.kind is 'hf'"):
        specs.check(bad)


def test_check_stops_at_a_missing_hf_model(config):
    bad = copy.deepcopy(config)
    for m in (bad["studies"]["rlvr"]["model"], bad["studies"]["rlvr"]["teacher"]["model"]):
        m.update(kind="hf", path="package:no_such_package")
    with pytest.raises(FileNotFoundError, match="no_such_package"):
        specs.check(bad)
