"""The smoke preset runs this study end to end through the project's Snakefile."""
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.claims import SCHEMA, VERDICTS
from pipeline.studies.hivemind.generate import GENERATION_SCHEMA

ROOT = Path(__file__).resolve().parents[2]


def smoke_config(tmp: Path, **models) -> Path:
    cfg = yaml.safe_load((ROOT / "config/presets/smoke.yaml").read_text())
    cfg["studies"].setdefault("hivemind", yaml.safe_load((ROOT / "config/studies/hivemind.smoke.yaml").read_text()))
    cfg["tracking"] = {"uri": f"sqlite:///{tmp / 'mlflow.db'}", "enabled": True}
    if models:
        cfg["studies"]["hivemind"]["models"] = models["models"]
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake(tmp: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    work = tmp / "wf"
    if not work.exists():
        work.mkdir()
        # The Snakefile's TEMP study loop checks rule files relative to the working directory.
        (work / "workflow").symlink_to(ROOT / "workflow")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "-d", str(work),
           "--configfile", str(config), "--cores", "2", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.xdist_group("hivemind-lm")
def test_smoke_preset_runs_the_hivemind_study(tmp_path):
    config = smoke_config(tmp_path)
    res = _snakemake(tmp_path, config, "hivemind")
    assert res.returncode == 0, res.stderr[-4000:]
    out = tmp_path / "wf/results/hivemind"
    block = yaml.safe_load(config.read_text())["studies"]["hivemind"]
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
    for fig in ("intra", "heatmap", "projection"):
        assert (out / f"figures/{fig}.png").stat().st_size > 10_000
    again = _snakemake(tmp_path, config, "hivemind", "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_missing_model_stops_the_dag_before_any_job(tmp_path):
    config = smoke_config(tmp_path, models=[{"name": "ghost", "kind": "hf", "path": str(tmp_path / "absent"),
                                             "decoding": ["top_p"]}])
    res = _snakemake(tmp_path, config, "hivemind", "-n")
    assert res.returncode != 0
    msg = res.stdout + res.stderr
    assert "model 'ghost'" in msg and "absent does not exist" in msg
    assert not (tmp_path / "wf/results").exists()
