"""The arithmetic task generator, the user-task loader and the exact checker."""
import json

import pytest

from pipeline.io import DataError
from pipeline.studies.rlvr.task import (
    ArithmeticTask, Checker, build_splits, checker_mode, generate_splits, load_user_task, parse_number,
)
from pipeline.models.chars import CharTokenizer


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


# (completion, reference answer, graded correct?) for the last_number checker.
LAST_NUMBER_TABLE = [
    ("so 3 + 4 gives 7. The answer is 1,020.", "1020", True),
    ("we get \\boxed{72} in the end, 5 apples", "72", True),
    ("reasoning 9 ... #### 72", "72.0", True),
    ("#### 72 apples", "72", True),                               # first number after ####
    ("#### 72\n\nQuestion: next one? #### 15", "72", True),      # the first #### marks the answer
    ("#### 72\n\nQuestion: next one? #### 15", "15", False),
    ("first \\boxed{3}, finally \\boxed{72}", "72", True),       # the last \\boxed{}
    ("first \\boxed{72}, finally \\boxed{3}", "72", False),
    ("\\boxed{\\$72}", "72", True),
    ("\\boxed{72\\text{ apples}}", "72", True),
    ("\\boxed{\\frac{5}{6}}", "\\frac{5}{6}", True),              # nested braces, text answer
    ("\\boxed{\\frac{1}{6}}", "\\frac{5}{6}", False),
    ("the answer is 71", "72", False),
    ("no number here", "72", False),
    ("so it is #### Paris.", "paris", True),
    ("\\boxed{Paris}", "Paris", True),
    ("\\boxed{Lyon}", "Paris", False),
]


@pytest.mark.parametrize("completion, answer, correct", LAST_NUMBER_TABLE)
def test_last_number_checker_table(completion, answer, correct):
    assert Checker("last_number").check(completion, answer) is correct


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
    cfg = {"source": "file", "path": str(path), "heldout_path": None, "n_heldout": 5, "seed": 0,
           "columns": {"prompt": None, "answer": None, "solution": None}}
    train, held = build_splits(cfg)
    assert len(train) == 15 and len(held) == 5
    assert build_splits(cfg) == (train, held)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:1: no answer column"):
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
    with pytest.raises(ValueError, match="not in the character vocabulary"):
        tok.encode("x")


GSM8K = [  # raw GSM8K rows, as in its train.jsonl
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                 "How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
               "altogether in April and May.\n#### 72"},
    {"question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
                 "How much did she earn?",
     "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned "
               "0.2 x 50 = $<<0.2*50=10>>10.\n#### 10"},
    {"question": "A store sold 1,200 pens on Monday and 300 more on Tuesday. How many pens in total?",
     "answer": "1,200 + 300 = <<1200+300=1500>>1,500\n#### 1,500"},
]
MATH = [  # MATH-style rows (problem, solution with \\boxed{}, level, type)
    {"problem": "What is $\\frac{1}{2} + \\frac{1}{3}$?", "level": "Level 1", "type": "Prealgebra",
     "solution": "The common denominator is 6, so the sum is $\\frac{3}{6}+\\frac{2}{6}=\\boxed{\\frac{5}{6}}$."},
    {"problem": "Compute $7 \\times 8$.", "level": "Level 1", "type": "Prealgebra",
     "solution": "$7 \\times 8 = \\boxed{56}$."},
]


def test_raw_gsm8k_loads_with_nothing_but_source_and_path(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in GSM8K * 4))
    cfg = {"source": "file", "path": str(path), "heldout_path": None, "n_heldout": 2, "seed": 0,
           "columns": {"prompt": None, "answer": None, "solution": None}, "checker": "auto"}
    train, held = build_splits(cfg)
    rows = load_user_task(path)
    assert [r["answer"] for r in rows[:3]] == ["72", "10", "1,500"]
    assert rows[0]["prompt"].startswith("Natalia") and rows[0]["target"].endswith("#### 72")
    assert len(train) == 10 and len(held) == 2
    ck = Checker(checker_mode(cfg))
    assert checker_mode(cfg) == "last_number" and checker_mode({**cfg, "source": "generated"}) == "strict"
    assert all(ck.check(r["target"], r["answer"]) for r in rows)  # the worked solution grades correct
    assert ck.check("She sold 72 clips in all. #### 72 clips", "72")
    assert ck.check("so #### 1500", "1,500")


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_math_style_in_every_file_format(tmp_path, suffix):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / f"math{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(MATH, indent=1))  # a JSON array, as many datasets ship
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in MATH))
    else:
        pq.write_table(pa.Table.from_pylist(MATH), path)
    rows = load_user_task(path)
    assert [r["answer"] for r in rows] == ["\\frac{5}{6}", "56"]
    assert rows[0]["target"] == MATH[0]["solution"] and rows[0]["klass"] == "Level 1"
    assert all(Checker("last_number").check(r["target"], r["answer"]) for r in rows)


def test_other_column_names_through_task_columns(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"q": "2+2?", "final": 4, "work": "2+2=4 #### 4"}) + "\n")
    rows = load_user_task(path, {"prompt": "q", "answer": "final", "solution": "work"})
    assert rows[0] == {"pid": "u000000", "prompt": "2+2?", "answer": "4", "target": "2+2=4 #### 4", "klass": "all"}
    with pytest.raises(DataError, match=r"mine\.jsonl:1: no column 'query' \(studies\.rlvr\.task\.columns\.prompt\)"):
        load_user_task(path, {"prompt": "query"})


@pytest.mark.parametrize("content, message", [
    ('{"question": "q", "answer": "no marker, a sentence"}\n{"question": "q2", "answer": "work\\n#### "}\n',
     r"t\.jsonl:2: no answer can be read from 'answer'"),
    ('{"question": "q", "answer": "#### twelve"}\n', r"t\.jsonl:1: no answer can be read"),
    ('{"problem": "p", "solution": "so \\\\boxed{}"}\n', r"t\.jsonl:1: no answer can be read from 'solution'"),
    ('{"problem": "p", "solution": "so \\\\boxed{12"}\n', r"t\.jsonl:1: no answer can be read from 'solution'"),
    ('{"question": "q", "answer": "#### 1"}\n{"question": "q", "response": "#### 1"}\n', r"t\.jsonl:2: no 'answer'"),
    ('{"question": ["q"], "answer": "#### 1"}\n', r"t\.jsonl:1: column 'question' must be text"),
    ('{"text": "q", "label": "1"}\n', r"t\.jsonl:1: no prompt column"),
    ('\n', r"has no rows"),
    ('["not an object"]', r"t\.jsonl: record 0: a problem must be a JSON object"),
])
def test_a_bad_task_file_fails_naming_file_and_row(tmp_path, content, message):
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_user_task(path)


def test_a_spine_model_too_short_for_prompt_plus_new_tokens_is_a_config_error():
    """Issue 13: the paper teacher (max_seq_len 64) trained for hours, then failed sampling 256 tokens."""
    from pipeline.config import load_config
    from pipeline.studies.rlvr.task import length_errors

    rlvr = load_config("config/presets/paper.yaml")["studies"]["rlvr"]
    assert length_errors(rlvr) == []
    rlvr["teacher"]["model"]["max_seq_len"] = 64
    (err,) = length_errors(rlvr)
    assert "studies.rlvr.teacher.model.max_seq_len=64" in err and "studies.rlvr.sampling.max_new_tokens=256" in err
