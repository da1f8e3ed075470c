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
    with pytest.raises(DataError, match="no prompt file .* found at .*nope.parquet"):
        P.load_infinity_chat(str(tmp_path / "nope.parquet"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no query here"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: neither a `query`"):
        P.load_infinity_chat(str(bad))


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


def test_infinity_chat_as_downloaded_several_files_messages_as_json_strings_and_duplicates(tmp_path):
    """The eval set and the taxonomy set together, as one finds them on disk: the taxonomy's
    `messages` and `categories` stored as JSON strings (a Parquet export), repeated prompts."""
    import json

    import pyarrow.parquet as pq

    turns = lambda text: json.dumps([{"role": "user", "content": text}, {"role": "assistant", "content": "..."}])  # noqa: E731
    pq.write_table(pa.table({
        "messages": [turns("Invent a sport played on the moon."), turns("Is it ever right to lie?"),
                     turns("Write a short poem about autumn leaves.")],
        "categories": [json.dumps(["Speculative & Hypothetical Scenarios"]), json.dumps(["Philosophical Questions"]),
                       json.dumps([{"category": "Creative Content", "subcategory": "Poetry"}])]}),
        tmp_path / "taxonomy-00000.parquet")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "part.jsonl").write_text(json.dumps({"query": "write a short poem  about autumn leaves."})
                                                  + "\n" + json.dumps({"query": "Name a new colour."}) + "\n")
    t = P.load_infinity_chat([str(tmp_path / "*.parquet"), str(tmp_path / "eval")])
    assert t.column("prompt").to_pylist() == ["Invent a sport played on the moon.", "Is it ever right to lie?",
                                              "Write a short poem about autumn leaves.", "Name a new colour."]
    assert t.column("category").to_pylist() == ["Speculative & Hypothetical Scenarios", "Philosophical Questions",
                                                "Creative Content", "uncategorised"]
    assert len(set(t.column("prompt_id").to_pylist())) == 4
    with pytest.raises(DataError, match=r"infinity_chat\.path: no prompt file .* found at .*nothing-here"):
        P.load_infinity_chat(str(tmp_path / "nothing-here" / "*.parquet"))


def test_duplicates_of_other_sources_are_dropped_and_counted(tmp_path, capsys):
    import json

    project = P.load_project().column("prompt").to_pylist()
    f = tmp_path / "ic.json"  # a JSON array, with a prompt of the project set and one repeated
    f.write_text(json.dumps([{"query": project[0]}, {"query": "Describe a dream city."},
                             {"query": "Describe a dream city."}]))
    cfg = {"project": {"enabled": True, "limit": None}, "blabber": {"enabled": False, "limit": None},
           "infinity_chat": {"enabled": True, "path": str(f), "limit": None}}
    t = P.build_prompt_set(cfg, seed=0)
    ic = t.filter(pa.compute.equal(t.column("source"), "infinity_chat"))
    assert ic.column("prompt").to_pylist() == ["Describe a dream city."]
    assert "3 rows in 1 file(s), 2 duplicate prompt(s) dropped, 1 kept" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ('{"query": "ok"}\n{"messages": "[not json"}\n', r"bad\.jsonl:2: `messages` is a string but not JSON"),
    ('{"query": "ok"}\n{"messages": [{"role": "system", "content": "x"}]}\n', r"bad\.jsonl:2: neither a `query`"),
    ('["a string, not a record"]', r"bad\.jsonl: record 0: a prompt record must be an object"),
    ("", r"prompt file has no rows: .*bad\.jsonl"),
])
def test_a_bad_infinity_chat_file_names_file_and_row(tmp_path, content, message):
    (tmp_path / "bad.jsonl").write_text(content)
    with pytest.raises(DataError, match=message):
        P.load_infinity_chat(tmp_path / "bad.jsonl")
