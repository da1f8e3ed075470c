"""Measures and verdicts on synthetic embeddings whose answer is known by construction."""
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.claims import SCHEMA, VERDICTS
from pipeline.io import write_parquet
from pipeline.studies.hivemind import analysis as A

CFG = {"threshold": 0.8, "threshold_embedder": "emb", "embedder": "emb",
       "diverse_similarity": {"embedder": "emb", "value": 0.3, "se": 0.04}, "share_majority": 0.5, "close_ratio": 0.8,
       "random_pairs": 200, "projection_prompts": 2, "seed": 0}


def _table(spec, n_prompts=8, n=6, dim=64, seed=0):
    """Embeddings per generator: `spec[g] = (model, noise)` around one centre per prompt.

    Small noise → responses to a prompt cluster tightly (high intra); centres of different
    prompts are random (near-orthogonal) so random pairs sit near 0. Generators sharing the
    same centres answer a prompt alike (high inter).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_prompts, dim))
    rows = []
    for g, (model, noise, own_centres) in spec.items():
        c = rng.normal(size=(n_prompts, dim)) if own_centres else centres
        for p in range(n_prompts):
            for s in range(n):
                v = c[p] + noise * rng.normal(size=dim)
                rows.append({"generator": g, "model": model, "decoding": g.split("@")[1],
                             "prompt_id": f"p{p}", "category": "c", "sample": s,
                             "embedding": (v / np.linalg.norm(v)).astype(np.float32)})
    emb = pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate([r.pop("embedding") for r in rows])), dim)
    return pa.Table.from_pylist(rows).append_column("embedding", emb)


def _generations(table, task=()):
    rows = [{"generator": r["generator"], "model": r["model"], "prompt_id": r["prompt_id"], "category": "c",
             "source": "task:heldout" if r["generator"] in task else "project",
             "sample": r["sample"], "response": f"{r['generator']} {r['prompt_id']} {r['sample'] % 2}",
             "empty": False} for r in table.drop_columns(["embedding"]).to_pylist()]
    return pa.Table.from_pylist(rows)


def test_intra_and_random_baseline_follow_the_construction():
    t = _table({"a@x": ("a", 0.3, False), "b@x": ("b", 3.0, False)})
    intra = A.intra_table(t, {}).to_pylist()
    tight = [r for r in intra if r["generator"] == "a@x"]
    loose = [r for r in intra if r["generator"] == "b@x"]
    assert all(r["intra"] > 0.85 and abs(r["random"]) < 0.2 for r in tight)
    assert all(r["intra"] < 0.3 for r in loose)
    assert all(r["n_responses"] == 6 for r in intra)


def test_tight_distinct_models_on_shared_centres_reproduce_every_claim():
    t = _table({"a@x": ("a", 0.3, False), "b@x": ("b", 0.3, False)})
    intra, inter = A.intra_table(t, {}), A.inter_table(t)
    claims, repeats = A.repetition_claims(intra, CFG, "test", {"a@x": (1, 49), "b@x": (0, 48)})
    assert repeats == {"a@x": True, "b@x": True}
    assert [c.verdict for c in claims] == ["reproduced"] * 4
    assert "1/49 empty responses excluded" in claims[0].note
    conv = A.convergence_claims(intra, inter, {"a@x": "a", "b@x": "b"}, repeats, CFG, "test")
    assert len(conv) == 1 and conv[0].verdict == "reproduced" and conv[0].value > 0.9


def test_models_answering_differently_do_not_converge():
    t = _table({"a@x": ("a", 0.3, False), "b@x": ("b", 0.3, True)})  # b has its own centres
    intra, inter = A.intra_table(t, {}), A.inter_table(t)
    _, repeats = A.repetition_claims(intra, CFG, "test", {})
    conv = A.convergence_claims(intra, inter, {"a@x": "a", "b@x": "b"}, repeats, CFG, "test")
    assert conv[0].verdict == "not reproduced" and conv[0].value < 0.3


def test_low_repetition_is_judged_against_the_threshold_and_blocks_convergence():
    t = _table({"a@x": ("a", 1.0, False), "b@x": ("b", 6.0, False)})
    intra, inter = A.intra_table(t, {}), A.inter_table(t)
    claims, repeats = A.repetition_claims(intra, CFG, "test", {})
    by = {c.claim: c for c in claims}
    share_a = next(c for k, c in by.items() if k.startswith("a@x: most prompts"))
    assert share_a.value == 0.0 and share_a.verdict == "not reproduced"
    assert not repeats["b@x"]
    conv = A.convergence_claims(intra, inter, {"a@x": "a", "b@x": "b"}, repeats, CFG, "test")
    assert conv[0].verdict == "inconclusive" and "b@x shows no repetition" in conv[0].note


def test_decoding_variants_of_one_model_leave_convergence_inconclusive():
    t = _table({"a@x": ("a", 0.3, False), "a@y": ("a", 0.3, False)})
    intra, inter = A.intra_table(t, {}), A.inter_table(t)
    _, repeats = A.repetition_claims(intra, CFG, "test", {})
    conv = A.convergence_claims(intra, inter, {"a@x": "a", "a@y": "a"}, repeats, CFG, "test")
    assert len(conv) == 1 and conv[0].verdict == "inconclusive"
    assert "only one distinct model in the population (a)" in conv[0].note and np.isfinite(conv[0].value)


def test_rl_claim_needs_the_pair_and_detects_lost_diversity():
    t = _table({"base@x": ("base", 1.0, False), "rl@x": ("rl", 0.3, False)})
    intra = A.intra_table(t, {})
    gens = _generations(t)
    missing = A.rl_claims(intra, gens, [], CFG, "test")
    assert missing[0].verdict == "inconclusive" and "not in this run" in missing[0].note
    c = A.rl_claims(intra, gens, [{"base": "base@x", "rl": "rl@x"}], CFG, "test")[0]
    assert c.verdict == "reproduced" and c.value > c.baseline
    assert "distinct-response share 0.33 (RL) vs 0.33 (base)" in c.note
    reverse = A.rl_claims(intra, gens, [{"base": "rl@x", "rl": "base@x"}], CFG, "test")[0]
    assert reverse.verdict == "not reproduced"


def test_run_analysis_writes_every_table(tmp_path):
    t = _table({"a@x": ("a", 0.3, False), "b@x": ("b", 0.5, False)})
    write_parquet(t, tmp_path / "emb.parquet")
    write_parquet(_generations(t), tmp_path / "gen.parquet")
    out = {k: str(tmp_path / f"{k}.out") for k in ("intra", "inter", "random_pairs", "summary", "claims")}
    claims = A.run_analysis(str(tmp_path / "emb.parquet"), [str(tmp_path / "gen.parquet")], out,
                            {**CFG, "rl_pairs": []}, "test")
    table = pq.read_table(out["claims"])
    assert table.schema.equals(SCHEMA) and table.num_rows == len(claims) == 6
    assert set(table.column("verdict").to_pylist()) <= set(VERDICTS)
    assert pq.read_table(out["inter"]).num_rows == 8
    assert pq.read_table(out["random_pairs"]).num_rows == 400


def test_absolute_cosines_for_another_embedder_are_not_judged():
    """The paper's 0.8 and the diverse baseline are calibrated per embedder: another one is inconclusive."""
    t = _table({"a@x": ("a", 0.3, False)})
    intra = A.intra_table(t, {})
    claims, repeats = A.repetition_claims(intra, {**CFG, "embedder": "other"}, "test", {})
    assert [c.verdict for c in claims] == ["inconclusive"] * 2 and not repeats["a@x"]
    assert "recalibrate" in claims[0].note and "do not transfer" in claims[1].note


def test_task_models_enter_only_the_rl_claim(tmp_path):
    t = _table({"a@x": ("a", 0.3, False), "base@x": ("base", 1.0, False), "rl@x": ("rl", 0.3, False)})
    write_parquet(t, tmp_path / "emb.parquet")
    write_parquet(_generations(t, task={"base@x", "rl@x"}), tmp_path / "gen.parquet")
    out = {k: str(tmp_path / f"{k}.out") for k in ("intra", "inter", "random_pairs", "summary", "claims")}
    claims = A.run_analysis(str(tmp_path / "emb.parquet"), [str(tmp_path / "gen.parquet")], out,
                            {**CFG, "rl_pairs": [{"base": "base@x", "rl": "rl@x"}]}, "test")
    names = [c.claim for c in claims]
    assert not any(n.startswith(("base@x", "rl@x")) for n in names)
    assert sum("repeats itself" in n for n in names) == 1
    rl = claims[-1]  # arithmetic task prompts: similarity rises with accuracy, so not judged there
    assert rl.claim.endswith("rl@x vs base@x") and rl.verdict == "inconclusive" and "task prompts" in rl.note
    assert {r["generator"] for r in pq.read_table(out["intra"]).to_pylist()} == {"a@x", "base@x", "rl@x"}
