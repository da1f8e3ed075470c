"""One training run on the shared engine and the evaluation of its checkpoints."""
import json

import pyarrow.parquet as pq
import pytest

from pipeline.studies.diffusion import plan
from pipeline.studies.diffusion.data import write_subset
from pipeline.studies.diffusion.evaluate import evaluate_checkpoint
from pipeline.studies.diffusion.feature_net import train_feature_net
from pipeline.studies.diffusion.train import main, weights_path

STUDY = {"model": {"kind": "mlp", "mlp": {"width": 32, "depth": 1}}, "ddpm": {"T": 100, "beta_start": 1e-4, "beta_end": 0.02},
         "train": {"steps_per_image": 4, "min_steps": 30, "batch": 16, "lr": 1e-3, "warmup": 2, "betas": [0.9, 0.999],
                   "grad_clip": 1.0, "ema": 0.9, "ema_warmup": 5, "precision": "fp32", "ckpt_every": 0},
         "checkpoints": {"first": 5, "per_octave": 1}}
EVAL = {"model": STUDY["model"], "ddpm": STUDY["ddpm"], "sampling": {"n_samples": 20, "ddim_steps": 5, "clip": True, "batch": 8},
        "memorization": {"ratio": 1 / 3, "n_boot": 50, "chunk": 16}, "loss_points": 64, "seed": 0}


@pytest.mark.slow
def test_train_exports_log_spaced_weights_and_evaluation_is_reproducible(digits_table, tmp_path):
    subset = tmp_path / "sub.parquet"
    write_subset(digits_table, subset, 8, 0, "nested")
    out = tmp_path / "run"
    spec = {"subset": str(subset), "out_dir": str(out), "n": 8, "seed": 0, "threads": 1, "device": "cpu",
            "tracking": {"enabled": False, "uri": None}, **STUDY}
    main(spec)
    steps = plan.export_steps(8, STUDY)
    assert steps == [5, 10, 20, 32]
    assert all(weights_path(out, s).is_file() for s in steps)
    result = json.loads((out / "result.json").read_text())
    assert result == {"step": 32, "diverged": False, "export_at": steps}
    assert pq.read_table(out / "metrics.parquet").num_rows == 32

    train_feature_net(digits_table, tmp_path / "f.pt", tmp_path / "f.json",
                      {"task": "auto", "width": 4, "dim": 8, "steps": 5, "batch": 16, "lr": 1e-3, "seed": 0})
    kw = dict(train_result=out / "result.json", subset=subset, images=digits_table, feature_weights=tmp_path / "f.pt",
              feature_meta=tmp_path / "f.json", cfg=EVAL, n=8, seed=0)
    rows = [evaluate_checkpoint(weights=weights_path(out, s), step=s, out_row=tmp_path / f"r{s}.parquet",
                                out_samples=tmp_path / f"s{s}.parquet", **kw) for s in (5, 32)]
    assert all(r["status"] == "ok" and 0 <= r["f_mem"] <= 1 and r["fd"] >= 0 for r in rows)
    assert rows[0]["loss_train"] != rows[1]["loss_train"]
    again = evaluate_checkpoint(weights=weights_path(out, 32), step=32, out_row=tmp_path / "again.parquet",
                                out_samples=tmp_path / "again_s.parquet", **kw)
    assert again == rows[1]
    samples = pq.read_table(tmp_path / "s32.parquet")
    assert samples.num_rows == 20 and {"pixels", "nn_index", "d1", "d2", "memorised"} <= set(samples.column_names)
