"""The smoke preset runs the RLVR study end to end through the project's Snakefile."""
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.config import load_config
from pipeline.claims import SCHEMA, VERDICTS

from tests.conftest import SMOKE, assert_study_done, snakemake


def smoke_config(tmp: Path, **changes) -> Path:
    cfg = load_config(SMOKE)
    for block, values in changes.items():
        cfg["studies"]["rlvr"][block].update(values)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_smoke_preset_runs_the_rlvr_study(smoke_run, tmp_path):
    out = smoke_run / "results/rlvr"
    block = load_config(SMOKE)["studies"]["rlvr"]
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
            "distillation expands coverage beyond the base more than RL does"} <= names
    passk = pq.read_table(out / "passk.parquet").to_pylist()
    assert {r["k"] for r in passk} == {1, 2, 4}
    assert_study_done(smoke_run, "rlvr", ["passk", "coverage", "perplexity"], 10_000)


@pytest.mark.slow
def test_new_evaluation_setting_reruns_evaluation_not_training(tmp_path):
    work = tmp_path / "wf"
    snakemake(work, "--configfile", str(smoke_config(tmp_path)), "rlvr", "--cores", "2")
    changed = snakemake(work, "--configfile", str(smoke_config(tmp_path, eval={"temperature": 1.0})), "rlvr", "-n")
    log = changed.stdout + changed.stderr
    assert "rlvr_evaluate" in log and "rlvr_analyse" in log
    assert not any(f"rule {r}:" in log or f"localrule {r}:" in log
                   for r in ("rlvr_base", "rlvr_teacher", "rlvr_rl", "rlvr_distill"))


@pytest.mark.slow
def test_too_few_samples_for_k_max_stops_the_dag_build(tmp_path):
    res = snakemake(tmp_path / "wf", "--configfile", str(smoke_config(tmp_path, eval={"n_samples": 6, "k_max": 4})),
                    "rlvr", "-n", check=False)
    assert res.returncode != 0
    assert "studies.rlvr.eval.n_samples=6" in res.stdout + res.stderr
