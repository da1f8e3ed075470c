"""One training run on the shared engine, the weights it publishes, and the evaluation of its checkpoints."""
import dataclasses
import json
import shutil

import pyarrow.parquet as pq
import pytest

from pipeline.config import as_params
from pipeline.io import DataError
from pipeline.studies.diffusion import plan
from pipeline.studies.diffusion.data import write_subset
from pipeline.studies.diffusion.evaluate import evaluate_checkpoint
from pipeline.studies.diffusion.feature_net import train_feature_net
from pipeline.studies.diffusion.specs import EvalSpec, TrainSpec, weights_file
from pipeline.studies.diffusion.train import main, publish, published_steps, weights_path

STUDY = {"model": {"kind": "mlp", "mlp": {"width": 32, "depth": 1, "t_dim": 128}},
         "ddpm": {"T": 100, "beta_start": 1e-4, "beta_end": 0.02},
         "train": {"steps_per_image": 4, "min_steps": 30, "batch": 16, "lr": 1e-3, "warmup": 2, "betas": [0.9, 0.999],
                   "grad_clip": 1.0, "ema": 0.9, "ema_warmup": 5, "precision": "fp32", "ckpt_every": 0},
         "checkpoints": {"first": 5, "per_octave": 1}}
EVAL = dict(model=STUDY["model"], ddpm=STUDY["ddpm"], sampling={"n_samples": 20, "ddim_steps": 5, "clip": True, "batch": 8},
            memorization={"ratio": 1 / 3, "n_boot": 50, "chunk": 16}, loss_points=64, eval_seed=0, device="cpu")


def test_published_steps_stop_before_the_step_that_diverged():
    assert published_steps([5, 10, 20, 32], 32, diverged=False) == [5, 10, 20, 32]
    assert published_steps([5, 10, 20, 32], 20, diverged=True) == [5, 10]
    assert published_steps([5, 10, 20, 32], 21, diverged=True) == [5, 10, 20]


def test_publish_links_the_runs_exports_and_names_a_missing_one(tmp_path):
    run, dest = tmp_path / "run", tmp_path / "run" / "exports"
    for step in (5, 10):
        weights_path(run, step).parent.mkdir(parents=True, exist_ok=True)
        weights_path(run, step).write_bytes(b"w%d" % step)
    publish(run, dest, [5, 10])
    assert weights_file(dest, 10).read_bytes() == b"w10"
    shutil.rmtree(dest)  # what Snakemake does to the outputs of a failed or re-run job
    assert weights_path(run, 5).is_file()  # the run's own copy survives, so a resumed run publishes it again
    with pytest.raises(DataError, match="missing export"):
        publish(run, dest, [5, 20])


@pytest.mark.slow
def test_train_exports_log_spaced_weights_and_evaluation_is_reproducible(digits_table, tmp_path):
    subset = tmp_path / "sub.parquet"
    write_subset(digits_table, subset, 8, 0, "nested", 0)
    out, published = tmp_path / "run", tmp_path / "run" / "exports"
    spec = TrainSpec(subset=str(subset), out_dir=str(out), weights_dir=str(published), n=8, seed=0, device="cpu", **STUDY)
    main(as_params(spec))  # as the rule's launch command passes it
    steps = plan.export_steps(8, STUDY)
    assert steps == [5, 10, 20, 32]
    assert all(weights_path(out, s).is_file() for s in steps)
    assert sorted(p.name for p in published.iterdir()) == [weights_file(published, s).name for s in steps]
    result = json.loads((out / "result.json").read_text())
    assert result == {"step": 32, "diverged": False, "export_at": steps}
    assert pq.read_table(out / "metrics.parquet").num_rows == 32

    train_feature_net(digits_table, tmp_path / "f.pt", tmp_path / "f.json",
                      {"task": "auto", "width": 4, "dim": 8, "steps": 5, "batch": 16, "lr": 1e-3, "seed": 0})
    kw = dict(train_result=out / "result.json", subset=subset, images=digits_table, feature_weights=tmp_path / "f.pt",
              feature_meta=tmp_path / "f.json", device="cpu")
    espec = {s: EvalSpec(n=8, seed=0, step=s, **EVAL) for s in (5, 32)}
    rows = [evaluate_checkpoint(espec[s], weights=weights_file(published, s), out_row=tmp_path / f"r{s}.parquet",
                                out_samples=tmp_path / f"s{s}.parquet", **kw) for s in (5, 32)]
    assert all(r["status"] == "ok" and 0 <= r["f_mem"] <= 1 and r["fd"] >= 0 for r in rows)
    assert rows[0]["loss_train"] != rows[1]["loss_train"]
    again = evaluate_checkpoint(espec[32], weights=weights_file(published, 32), out_row=tmp_path / "again.parquet",
                                out_samples=tmp_path / "again_s.parquet", **kw)
    assert again == rows[1]
    samples = pq.read_table(tmp_path / "s32.parquet")
    assert samples.num_rows == 20 and {"pixels", "nn_index", "d1", "d2", "memorised"} <= set(samples.column_names)

    # a run that diverged at step 20 published no weights for it: its row says so instead of failing
    (out / "result.json").write_text(json.dumps({"step": 20, "diverged": True, "export_at": steps}))
    row = evaluate_checkpoint(dataclasses.replace(espec[32], step=20), weights=tmp_path / "none.pt",
                              out_row=tmp_path / "d.parquet", out_samples=tmp_path / "d_s.parquet", **kw)
    assert row["status"] == "diverged at step 20"
