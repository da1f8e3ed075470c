"""The smoke preset runs this study end to end through the project's Snakefile."""
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.config import load_config
from pipeline.claims import SCHEMA, VERDICTS
from pipeline.studies.hivemind.generate import GENERATION_SCHEMA

from tests.conftest import SMOKE, assert_study_done, snakemake


def smoke_config(tmp: Path, **models) -> Path:
    cfg = load_config(SMOKE)
    if models:
        cfg["studies"]["hivemind"]["models"] = models["models"]
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_smoke_preset_runs_the_hivemind_study(smoke_run):
    out = smoke_run / "results/hivemind"
    block = load_config(SMOKE)["studies"]["hivemind"]
    gen = pq.read_table(out / "generations/smollm2.parquet")
    assert gen.schema.equals(GENERATION_SCHEMA)
    n_prompts = block["prompts"]["project"]["limit"] + block["prompts"]["blabber"]["limit"]
    assert gen.num_rows == n_prompts * block["generation"]["n_samples"] * 2
    assert set(gen.column("generator").to_pylist()) == {"smollm2@top_p", "smollm2@min_p"}
    claims = pq.read_table(out / "claims.parquet")
    assert claims.schema.equals(SCHEMA)
    rows = claims.to_pylist()
    assert all(r["verdict"] in VERDICTS and r["study"] == "hivemind" for r in rows)
    names = [r["claim"] for r in rows]
    assert sum("repeats itself" in n for n in names) == 2
    assert sum("above 0.8" in n for n in names) == 2
    assert any("converge" in n for n in names) and any("RL-trained" in n for n in names)
    summary = json.loads((out / "summary.json").read_text())
    for g in ("smollm2@top_p", "smollm2@min_p"):
        s = summary["generators"][g]
        assert s["responses"] == n_prompts * block["generation"]["n_samples"]
        assert -1 <= s["mean_random_pair"] < s["mean_intra"] <= 1  # the chat model repeats itself
    assert_study_done(smoke_run, "hivemind", ["intra", "heatmap", "projection"], 10_000)


@pytest.mark.slow
def test_missing_model_stops_the_dag_before_any_job(tmp_path):
    config = smoke_config(tmp_path, models=[{"name": "ghost", "kind": "hf", "path": str(tmp_path / "absent"),
                                             "decoding": ["top_p"]}])
    res = snakemake(tmp_path / "wf", "--configfile", str(config), "hivemind", "-n", check=False)
    assert res.returncode != 0
    msg = res.stdout + res.stderr
    assert "model 'ghost'" in msg and "absent' does not exist" in msg
    assert not (tmp_path / "wf/results").exists()
