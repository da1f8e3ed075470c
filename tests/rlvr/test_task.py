"""The arithmetic task generator, the user-task loader and the exact checker."""
import json

import pytest

from pipeline.io import DataError
from pipeline.studies.rlvr.task import (
    ArithmeticTask, Checker, build_splits, generate_splits, load_user_task, parse_number,
)
from pipeline.studies.rlvr.tokenizer import CharTokenizer


@pytest.mark.parametrize("text", ["102", "0102", " 102 ", "+102", "102.0", "102.", "$102", "204/2"])
def test_strict_checker_accepts_equivalent_formats(text):
    assert Checker("strict").check(text, "102")


@pytest.mark.parametrize("text", ["103", "10", "1 02", "102x", "", "102+", "abc", "12=", "-102"])
def test_strict_checker_rejects_wrong_answers(text):
    assert not Checker("strict").check(text, "102")


def test_strict_checker_reads_after_the_last_equals_sign():
    ck = Checker("strict")
    assert ck.check("46+56=102", "102")
    assert not ck.check("46+56=101", "102")
    assert ck.check("46+56=0102", "102")


def test_last_number_checker_for_free_form_text():
    ck = Checker("last_number")
    assert ck.check("so 3 + 4 gives 7. The answer is 1,020.", "1020")
    assert ck.check("we get \\boxed{72} in the end, 5 apples", "72")
    assert ck.check("reasoning 9 ... #### 72", "72.0")
    assert not ck.check("the answer is 71", "72")
    assert not ck.check("no number here", "72")
    assert ck.check("so it is #### Paris.", "paris")
    assert ck.check("\\boxed{Paris}", "Paris")
    assert not ck.check("\\boxed{Lyon}", "Paris")


def test_parse_number_values():
    assert parse_number("1,234") == 1234
    assert parse_number("-0.50") == parse_number("-1/2")
    assert parse_number("1,23") is None
    assert parse_number("1/0") is None


def test_bad_checker_mode():
    with pytest.raises(ValueError, match="checker mode"):
        Checker("fuzzy")


def test_generator_is_deterministic_and_splits_are_disjoint():
    task = ArithmeticTask(n_terms=3, digits=2)
    a = generate_splits(task, 500, 50, seed=7)
    b = generate_splits(task, 500, 50, seed=7)
    c = generate_splits(task, 500, 50, seed=8)
    assert a == b
    assert a != c
    train, held = a
    assert len(train) == 500 and len(held) == 50
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held}
    assert len({r["prompt"] for r in train}) == 500


def test_generated_rows_are_correct_and_fixed_width():
    task = ArithmeticTask(n_terms=3, digits=2)
    train, _ = generate_splits(task, 200, 10, seed=0)
    ck = Checker("strict")
    for r in train:
        terms = [int(t) for t in r["prompt"][:-1].split("+")]
        assert len(r["prompt"]) == 9 and r["prompt"].endswith("=")
        assert int(r["answer"]) == sum(terms) and len(r["answer"]) == 3
        assert ck.check(r["target"], r["answer"])
        assert r["klass"] == f"3t-lead{r['answer'][0]}"


def test_chain_of_thought_targets():
    task = ArithmeticTask(n_terms=3, digits=2, cot=True)
    assert task.target((12, 34, 56)) == "46+56=102"
    assert task.target((1, 2, 3)) == "3+03=006"
    assert ArithmeticTask(n_terms=2, digits=2, cot=True).target((12, 34)) == "046"


def test_difficulty_limits():
    with pytest.raises(ValueError, match="n_terms"):
        ArithmeticTask(n_terms=1)
    with pytest.raises(ValueError, match="too few"):
        ArithmeticTask(n_terms=2, digits=1).draw(101, __import__("numpy").random.default_rng(0))


def test_mixture_of_difficulties():
    task = ArithmeticTask(n_terms=(2, 3), digits=2)
    train, held = generate_splits(task, 2000, 200, seed=0)
    sizes = [r["prompt"].count("+") + 1 for r in train]
    assert set(sizes) == {2, 3} and 0.4 < sizes.count(2) / len(sizes) < 0.6
    assert {r["klass"][:2] for r in held} == {"2t", "3t"}
    assert task.answer((99, 99)) == "198" and task.answer((1, 2)) == "003"
    with pytest.raises(ValueError, match="distinct integers"):
        ArithmeticTask(n_terms=(2, 2))


def test_user_task_jsonl_and_errors(tmp_path):
    path = tmp_path / "gsm.jsonl"
    rows = [{"prompt": f"What is {i}+1?", "answer": str(i + 1)} for i in range(20)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded = load_user_task(path)
    assert loaded[3]["prompt"] == "What is 3+1?" and loaded[3]["target"] == "4"
    cfg = {"source": "file", "path": str(path), "heldout_path": None, "n_heldout": 5, "seed": 0}
    train, held = build_splits(cfg)
    assert len(train) == 15 and len(held) == 5
    assert build_splits(cfg) == (train, held)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(DataError, match="'answer'"):
        load_user_task(bad)
    with pytest.raises(DataError, match="not found"):
        load_user_task(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="n_heldout"):
        build_splits({**cfg, "n_heldout": 50})


def test_char_tokenizer_round_trip(tmp_path):
    tok = CharTokenizer.from_texts(["12+34=", "046"])
    ids = tok.prompt_ids("12+34=") + tok.target_ids("046")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(tok.encode("12+34=046")) == "12+34=046"
    assert tok.decode(tok.target_ids("046") + tok.encode("12")) == "046"  # stops at EOS
    tok.save(tmp_path / "tok.json")
    assert CharTokenizer.load(tmp_path / "tok.json").chars == tok.chars
    with pytest.raises(ValueError, match="not in the task vocabulary"):
        tok.encode("x")


def test_a_spine_model_too_short_for_prompt_plus_new_tokens_is_a_config_error():
    """Issue 13: the paper teacher (max_seq_len 64) trained for hours, then failed sampling 256 tokens."""
    from pipeline.config import load_config
    from pipeline.studies.rlvr.task import length_errors

    rlvr = load_config("config/presets/paper.yaml")["studies"]["rlvr"]
    assert length_errors(rlvr) == []
    rlvr["teacher"]["model"]["max_seq_len"] = 64
    (err,) = length_errors(rlvr)
    assert "studies.rlvr.teacher.model.max_seq_len=64" in err and "studies.rlvr.sampling.max_new_tokens=256" in err
