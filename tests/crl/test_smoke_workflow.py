"""The smoke preset runs this study end to end through the project's Snakefile."""
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.claims import SCHEMA, VERDICTS
from tests.conftest import REPO, SMOKE, snakemake


def crl_only_run(tmp) -> tuple:
    """The crl target alone, for a smoke preset that does not list the study yet."""
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["studies"]["crl"] = yaml.safe_load((REPO / "config/studies/crl.smoke.yaml").read_text())
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    work = tmp / "wf"
    work.mkdir()
    snakemake(work, "--configfile", str(path), "--cores", "2", "crl", timeout=900)
    return work, path


@pytest.mark.slow
@pytest.mark.xdist_group("smoke")
def test_smoke_preset_runs_the_crl_study(request, tmp_path):
    if "crl" in yaml.safe_load(SMOKE.read_text())["studies"]:
        work, config = request.getfixturevalue("smoke_run"), SMOKE  # the shared run of the whole DAG
    else:
        work, config = crl_only_run(tmp_path)
    out = work / "results/crl"
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
    for fig in ("time_at_goal_vs_depth", "learning_curves", "depth_vs_width"):
        assert (out / f"figures/{fig}.png").stat().st_size > 10_000
    again = snakemake(work, "--configfile", str(config), "-n", "crl")
    assert "Nothing to be done" in again.stdout + again.stderr
