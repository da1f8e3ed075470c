"""The smoke preset runs the RLVR study end to end through the project's Snakefile."""
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.claims import SCHEMA, VERDICTS

ROOT = Path(__file__).resolve().parents[2]


def smoke_config(tmp: Path, **changes) -> Path:
    cfg = yaml.safe_load((ROOT / "config/presets/smoke.yaml").read_text())
    cfg["studies"].setdefault("rlvr", yaml.safe_load((ROOT / "config/studies/rlvr.smoke.yaml").read_text()))
    cfg["tracking"] = {"uri": None, "enabled": False}  # the mirror has its own tests; keep this one fast
    for block, values in changes.items():
        cfg["studies"]["rlvr"][block].update(values)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(tmp: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    work = tmp / "wf"
    if not work.exists():
        work.mkdir()
        # The Snakefile's TEMP study loop checks rule files relative to the working directory.
        (work / "workflow").symlink_to(ROOT / "workflow")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "-d", str(work),
           "--configfile", str(config), "--cores", "2", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_smoke_preset_runs_the_rlvr_study(tmp_path):
    config = smoke_config(tmp_path)
    res = run(tmp_path, config, "rlvr")
    assert res.returncode == 0, res.stderr[-4000:]
    out = tmp_path / "wf/results/rlvr"
    block = yaml.safe_load(config.read_text())["studies"]["rlvr"]
    models = ["base", "teacher", "distill-s0", "grpo-s0", "rloo-s0"]
    for m in models:
        counts = pq.read_table(out / f"eval/{m}/counts.parquet").to_pylist()
        assert len(counts) == block["task"]["n_heldout"]
        assert all(r["n"] == block["eval"]["n_samples"] and 0 <= r["c"] <= r["n"] for r in counts)
        samples = pq.read_table(out / f"eval/{m}/samples.parquet")
        assert samples.num_rows == block["task"]["n_heldout"] * block["eval"]["n_samples"]
        assert {"text", "tokens", "correct", "base_logp", "n_tokens"} <= set(samples.column_names)
    rl_metrics = pq.read_table(out / "models/grpo-s0/metrics.parquet").to_pylist()
    assert len(rl_metrics) == block["rl"]["train"]["steps"] and all("reward" in r and "kl" in r for r in rl_metrics)
    claims = pq.read_table(out / "claims.parquet")
    assert claims.schema.equals(SCHEMA)
    rows = claims.to_pylist()
    assert all(r["verdict"] in VERDICTS and r["study"] == "rlvr" for r in rows)
    names = {r["claim"] for r in rows}
    assert {"grpo: RL beats base at k=1", "rloo: base catches up or overtakes RL at large k",
            "distillation solves problems the base never solves"} <= names
    passk = pq.read_table(out / "passk.parquet").to_pylist()
    assert {r["k"] for r in passk} == {1, 2, 4}
    for fig in ("passk", "coverage", "perplexity"):
        assert (out / f"figures/{fig}.png").stat().st_size > 10_000
    # Nothing left to do: a second invocation is a no-op ...
    again = run(tmp_path, config, "rlvr", "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # ... and a new evaluation setting re-runs evaluation and analysis, never training.
    changed = run(tmp_path, smoke_config(tmp_path, eval={"temperature": 1.0}), "rlvr", "-n")
    assert changed.returncode == 0, changed.stderr[-4000:]
    log = changed.stdout + changed.stderr
    assert "rlvr_evaluate" in log and "rlvr_analyse" in log
    assert not any(f"rule {r}:" in log or f"localrule {r}:" in log
                   for r in ("rlvr_base", "rlvr_teacher", "rlvr_rl", "rlvr_distill"))


@pytest.mark.slow
def test_too_few_samples_for_k_max_stops_the_dag_build(tmp_path):
    res = run(tmp_path, smoke_config(tmp_path, eval={"n_samples": 6, "k_max": 4}), "rlvr", "-n")
    assert res.returncode != 0
    assert "studies.rlvr.eval.n_samples=6" in res.stdout + res.stderr
