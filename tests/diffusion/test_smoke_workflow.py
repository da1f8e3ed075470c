"""The smoke preset runs the diffusion study end to end through the project's Snakefile."""
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.claims import SCHEMA, VERDICTS
from pipeline.studies.diffusion import plan

from tests.conftest import SMOKE, assert_study_done


@pytest.mark.slow
def test_smoke_preset_runs_the_diffusion_study(smoke_run):
    block = load_config(SMOKE)["studies"]["diffusion"]
    out = smoke_run / "results/diffusion"

    evals = pq.read_table(out / "evals.parquet").to_pylist()
    assert sorted((r["n"], r["seed"], r["step"]) for r in evals) == sorted(plan.evaluations(block))
    assert all(r["status"] == "ok" and 0 <= r["f_mem"] <= 1 for r in evals)
    ts = pq.read_table(out / "timescales.parquet").to_pylist()
    assert {(r["n"], r["seed"]) for r in ts} == {(n, s) for n in block["sizes"] for s in block["seeds"]}
    assert pq.read_table(out / "rf/curves.parquet").num_rows == (
        len(block["random_features"]["sizes"]) * len(block["random_features"]["seeds"]) * block["random_features"]["n_times"])

    claims = pq.read_table(out / "claims.parquet")
    assert claims.schema.equals(SCHEMA)
    rows = claims.to_pylist()
    assert len(rows) == 6 and all(r["study"] == "diffusion" and r["verdict"] in VERDICTS for r in rows)
    # two sizes cannot show a scaling law: every claim must say why it is not judged
    assert all(r["verdict"] == "inconclusive" and "precondition failed" in r["note"] for r in rows)
    assert_study_done(smoke_run, "diffusion",
                      ["fmem_steps", "fmem_steps_per_n", "timescales", "quality", "samples", "rf"], 1000)
