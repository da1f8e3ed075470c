"""The prompt sources: the project set, blabber's questions, and an Infinity-Chat copy."""
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.io import DataError
from pipeline.studies.hivemind import prompts as P

DATA = Path(__file__).resolve().parent / "data"


def test_project_set_is_valid_and_spread_over_the_taxonomy():
    t = P.load_project()
    assert t.num_rows >= 50
    assert t.column_names == list(P.COLUMNS)
    P.validate(t, P.TAXONOMY)  # unique ids and texts, known categories
    cats = t.column("category").to_pylist()
    for c in set(P.TAXONOMY) - {"personal"}:
        assert cats.count(c) >= 5, c
    assert all(p.strip() == p and len(p) > 10 for p in t.column("prompt").to_pylist())


def test_blabber_gives_its_43_open_questions():
    t = P.load_blabber()
    assert t.num_rows == 43
    P.validate(t, P.TAXONOMY)
    assert set(t.column("source").to_pylist()) == {"blabber"}
    assert all(q.endswith(("?", ".")) for q in t.column("prompt").to_pylist())


def test_infinity_chat_fixture_with_the_real_query_column():
    t = P.load_infinity_chat(DATA / "infinite_chats_eval_sample.parquet")
    assert t.num_rows == 5
    assert t.column("prompt")[0].as_py() == "Write a short poem about autumn leaves."
    assert set(t.column("source").to_pylist()) == {"infinity_chat"}
    assert len(set(t.column("prompt_id").to_pylist())) == 5
    sub = P.load_infinity_chat(DATA / "infinite_chats_eval_sample.parquet", limit=3, seed=7)
    again = P.load_infinity_chat(DATA / "infinite_chats_eval_sample.parquet", limit=3, seed=7)
    assert sub.num_rows == 3 and sub.equals(again)


def test_infinity_chat_taxonomy_layout_reads_the_first_user_turn():
    t = P.load_infinity_chat(DATA / "infinite_chats_taxonomy_sample.jsonl")
    assert t.column("prompt").to_pylist() == ["Invent a sport played on the moon.", "Is it ever right to lie?"]
    assert t.column("category").to_pylist() == ["Speculative & Hypothetical Scenarios", "Philosophical Questions"]


def test_bad_prompt_files_fail_naming_the_file(tmp_path):
    with pytest.raises(DataError, match="not found: .*nope.parquet"):
        P.load_infinity_chat(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no query here"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl: row 0 has neither a `query`"):
        P.load_infinity_chat(bad)


def test_build_prompt_set_combines_sources_and_stratifies_limits():
    cfg = {"project": {"enabled": True, "limit": 7}, "blabber": {"enabled": True, "limit": 2},
           "infinity_chat": {"enabled": True, "path": str(DATA / "infinite_chats_eval_sample.parquet"), "limit": None}}
    t = P.build_prompt_set(cfg, seed=0)
    assert t.num_rows == 7 + 2 + 5
    project = t.filter(pa.compute.equal(t.column("source"), "project"))
    assert len(set(project.column("category").to_pylist())) == 7  # one per category
    assert t.equals(P.build_prompt_set(cfg, seed=0))
    with pytest.raises(DataError, match="no path"):
        P.build_prompt_set({**cfg, "infinity_chat": {"enabled": True, "path": None, "limit": None}}, 0)


def test_duplicates_and_unknown_categories_are_rejected():
    t = P.load_project()
    with pytest.raises(DataError, match="duplicate prompt ids"):
        P.validate(pa.concat_tables([t, t]))
    renamed = t.set_column(0, "prompt_id", pa.array([f"x{i}" for i in range(2 * t.num_rows)][: t.num_rows]))
    with pytest.raises(DataError, match="duplicate prompts"):
        P.validate(pa.concat_tables([t, renamed]))
    odd = t.set_column(2, "category", pa.array(["gardening"] * t.num_rows))
    with pytest.raises(DataError, match="outside the taxonomy"):
        P.validate(odd, P.TAXONOMY)
