"""The gpu preset on a machine without a GPU: it dry-runs, and its jobs fail with a clear message."""
import pytest
import torch

from pipeline.runtime import DeviceError, setup
from tests.conftest import REPO, snakemake

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


@needs_no_gpu
def test_cuda_device_without_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="train.device is 'cuda' but no CUDA GPU"):
        setup(1, "cuda")
    assert setup(1, "auto").type == "cpu"


@needs_no_gpu
@pytest.mark.slow
def test_gpu_preset_training_job_fails_clearly_without_gpu(tmp_path):
    target = "results/gated_attention/runs/dense_none_main_s0/weights/final.pt"
    proc = snakemake(tmp_path, "--configfile", str(REPO / "config/presets/gpu.yaml"), "--cores", "1", target, check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs/gated_attention/train_dense_none_main_s0.log").read_text()
    assert "no CUDA GPU is visible" in log
    assert "CUDA error" not in log and "Torch not compiled with CUDA" not in log
    assert (tmp_path / "results/data/bigram/stats.json").exists()  # CPU data prep still done, kept


def test_place_moves_models_tensors_and_nested_batches():
    from pipeline.runtime import device_of, place, resolve

    meta = resolve("meta")
    model = place(torch.nn.Linear(2, 2), meta)
    assert device_of(model) == meta
    batch = place({"ids": torch.zeros(2), "parts": [torch.ones(1), (torch.ones(1), 3)]}, meta)
    assert batch["ids"].is_meta and batch["parts"][0].is_meta and batch["parts"][1][0].is_meta
    assert batch["parts"][1][1] == 3 and isinstance(batch["parts"][1], tuple)
