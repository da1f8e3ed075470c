"""The DAG's plan: budgets that grow with n and log-spaced checkpoint steps."""
import numpy as np

from pipeline.studies.diffusion import plan

STUDY = {"sizes": [8, 16, 32], "seeds": [0, 1],
         "train": {"steps_per_image": 500, "min_steps": 1000, "batch": 128},
         "checkpoints": {"first": 100, "per_octave": 2}}


def test_budget_grows_linearly_with_n_above_the_floor():
    assert plan.max_steps(1, STUDY["train"]) == 1000
    assert plan.max_steps(16, STUDY["train"]) == 8000 and plan.max_steps(32, STUDY["train"]) == 16000


def test_export_steps_are_log_spaced_and_end_at_the_budget():
    steps = plan.export_steps(16, STUDY)
    assert steps[0] == 100 and steps[-1] == 8000 and steps == sorted(set(steps))
    ratios = np.diff(np.log2(steps[:-1]))
    assert np.allclose(ratios, 0.5, atol=0.02)  # two per octave
    assert set(plan.export_steps(8, STUDY)[:-1]) <= set(steps)  # same grid for every n


def test_evaluations_cover_every_run_and_checkpoint():
    ev = plan.evaluations(STUDY)
    assert len(ev) == sum(len(plan.export_steps(n, STUDY)) for n in STUDY["sizes"]) * 2
    assert len(set(ev)) == len(ev)
