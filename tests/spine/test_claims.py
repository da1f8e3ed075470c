"""Verdicts follow the CI of per-seed effects; failed preconditions are never judged."""
import math

from pipeline.claims import assemble, judge, write_claims

BASE = dict(study="s", claim="c", metric="m", scale="test", floor=0.0)


def test_clear_effect_is_reproduced_and_its_opposite_is_not():
    up = judge(**BASE, values=[1.0, 1.1, 1.05], baselines=[0.5, 0.55, 0.52], higher_is_claimed=True)
    assert up.verdict == "reproduced" and up.effect > 0 and up.ci_low > 0
    down = judge(**BASE, values=[1.0, 1.1, 1.05], baselines=[0.5, 0.55, 0.52], higher_is_claimed=False)
    assert down.verdict == "not reproduced" and down.ci_high < 0


def test_noisy_effect_is_inconclusive():
    c = judge(**BASE, values=[1.0, 0.0, 1.0], baselines=[0.5, 0.5, 0.5], higher_is_claimed=True)
    assert c.verdict == "inconclusive" and c.ci_low < 0 < c.ci_high


def test_failed_precondition_and_single_seed_are_inconclusive():
    c = judge(**BASE, values=[2.0, 2.1], baselines=[1.0, 1.0], higher_is_claimed=True,
              precondition=(False, "no sink formed"))
    assert c.verdict == "inconclusive" and "no sink formed" in c.note
    one = judge(**BASE, values=[2.0], baselines=[1.0], higher_is_claimed=True)
    assert one.verdict == "inconclusive" and math.isnan(one.ci_low)


def test_diverged_values_are_not_judged():
    c = judge(**BASE, values=[float("nan"), 1.0], baselines=[1.0, 1.0], higher_is_claimed=False)
    assert c.verdict == "inconclusive" and "non-finite" in c.note


def test_assemble_writes_parquet_and_markdown(tmp_path):
    a = write_claims([judge(**BASE, values=[1, 2], baselines=[0, 0], higher_is_claimed=True)], tmp_path / "a.parquet")
    b = write_claims([judge(**{**BASE, "study": "t"}, values=[1], baselines=[0], higher_is_claimed=True)], tmp_path / "b.parquet")
    table = assemble([a, b], tmp_path / "claims.parquet", tmp_path / "claims.md")
    assert table.num_rows == 2
    md = (tmp_path / "claims.md").read_text()
    assert "## s" in md and "## t" in md and "**inconclusive**" in md and "| mde |" in md


def test_pipes_in_cells_do_not_split_the_markdown_table(tmp_path):
    """Metrics such as |RL∩base|/|RL| and notes such as `max |h|` keep every row at ten columns."""
    row = judge(**{**BASE, "metric": "|RL∩base|/|RL|"}, values=[1, 2], baselines=[0, 0], higher_is_claimed=True,
                note="max |h| = 6.3× median RMS")
    assemble([write_claims([row], tmp_path / "a.parquet")], tmp_path / "claims.parquet", tmp_path / "claims.md")
    table_rows = [line for line in (tmp_path / "claims.md").read_text().splitlines() if line.startswith("| ")]
    unescaped = [len(line.replace("\\|", "").split("|")) - 2 for line in table_rows]
    assert unescaped == [10, 10], table_rows


def test_identical_seeds_get_the_noise_floor_not_a_zero_width_interval():
    """Two runs with one spike each against two with none: one evaluation's noise, not certainty."""
    c = judge(**{**BASE, "floor": 1.0}, values=[1, 1], baselines=[0, 0], higher_is_claimed=True)
    assert c.ci_high - c.ci_low > 1 and c.verdict == "inconclusive" and "would need ~" in c.note
    assert c.mde > 1


def test_a_shared_baseline_evaluation_widens_the_interval():
    tight = judge(**BASE, values=[0.50, 0.51, 0.52], baselines=[0.45] * 3, higher_is_claimed=True)
    shared = judge(**BASE, values=[0.50, 0.51, 0.52], baselines=[0.45] * 3, higher_is_claimed=True,
                   shared_se=0.02)
    assert tight.verdict == "reproduced" and shared.verdict == "inconclusive"
    assert shared.ci_high - shared.ci_low > tight.ci_high - tight.ci_low
