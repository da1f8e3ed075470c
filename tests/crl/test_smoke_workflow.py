"""The smoke preset runs this study end to end through the project's Snakefile."""
import pyarrow.parquet as pq
import pytest

from pipeline.claims import SCHEMA, VERDICTS
from tests.conftest import assert_study_done


@pytest.mark.slow
def test_smoke_preset_runs_the_crl_study(smoke_run):
    out = smoke_run / "results/crl"
    claims = pq.read_table(out / "claims.parquet")
    assert claims.schema.equals(SCHEMA)
    rows = claims.to_pylist()
    assert {r["claim"] for r in rows} >= {"time at goal grows with depth (random pairs)",
                                          "time at goal grows with depth (hard pair)",
                                          "sharp jump at a critical depth", "widening does not match deepening"}
    assert all(r["verdict"] in VERDICTS and r["study"] == "crl" and r["scale"].startswith("smoke") for r in rows)
    summary = pq.read_table(out / "summary.parquet").to_pylist()
    assert {r["kind"] for r in summary} == {"depth", "width"}
    assert len(summary) == 6  # (depths 4, 8 + the widened depth-4 net) × 2 seeds
    assert all(0 <= r["agent_random_time_at_goal"] <= 1 and r["env_steps"] > 0 for r in summary)
    assert all(r["oracle_random_success_any"] == 1.0 for r in summary)
    assert_study_done(smoke_run, "crl", ["time_at_goal_vs_depth", "learning_curves", "depth_vs_width"], 10_000)
