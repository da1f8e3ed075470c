"""The paper's U-Net and the CPU residual MLP: shapes, configuration, errors."""
import pytest
import torch

from pipeline.studies.diffusion.denoiser import build_denoiser
from pipeline.studies.diffusion.unet import AttnBlock, UNet, UNetConfig, timestep_embedding

SMALL = {"base_width": 8, "channel_mult": [1, 2], "num_res_blocks": 1, "attn_levels": [1], "dropout": 0.0,
         "norm_groups": 4, "attn_heads": 1}


@pytest.mark.parametrize("side", [8, 28])
def test_unet_maps_images_to_noise_of_the_same_shape(side):
    torch.manual_seed(0)
    model = build_denoiser({"kind": "unet", "unet": SMALL}, (1, side, side))
    x = torch.randn(3, 1, side, side)
    out = model(x, torch.tensor([0, 500, 999]))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_paper_unet_configuration():
    cfg = UNetConfig()  # W=32, (1, 2, 4), 2 res-blocks, attention at levels 1 and 2, dropout 0.1
    model = UNet(cfg)
    attn = [m for m in model.modules() if isinstance(m, AttnBlock)]
    # levels 1 and 2: 2 down + 3 up blocks each, plus the middle block
    assert len(attn) == 2 * (2 + 3) + 1
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.modules())
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.1 for m in model.modules())
    out = model(torch.randn(2, 1, 32, 32), torch.tensor([3, 700]))
    assert out.shape == (2, 1, 32, 32)


def test_unet_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = build_denoiser({"kind": "unet", "unet": SMALL}, (1, 8, 8))
    # zero-initialised output layers block gradients at step 0; perturb them
    for p in model.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    model(torch.randn(2, 1, 8, 8), torch.tensor([1, 2])).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_mlp_denoiser_shape_and_size():
    model = build_denoiser({"kind": "mlp", "mlp": {"width": 256, "depth": 3}}, (1, 8, 8))
    assert sum(p.numel() for p in model.parameters()) == 526_656  # the calibration's 527k model
    assert model(torch.randn(4, 1, 8, 8), torch.arange(4)).shape == (4, 1, 8, 8)


def test_time_embedding_distinguishes_steps():
    e = timestep_embedding(torch.tensor([0, 1, 500]), 32)
    assert e.shape == (3, 32) and not torch.allclose(e[0], e[1])


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="model.kind"):
        build_denoiser({"kind": "transformer"}, (1, 8, 8))
    with pytest.raises(ValueError, match="model.unet: unknown keys"):
        build_denoiser({"kind": "unet", "unet": {"width": 3}}, (1, 8, 8))
    with pytest.raises(ValueError, match="attn_levels"):
        UNetConfig(channel_mult=[1, 2], attn_levels=[2])
    model = build_denoiser({"kind": "unet", "unet": {**SMALL, "channel_mult": [1, 2, 4]}}, (1, 6, 6))
    with pytest.raises(ValueError, match="divisible"):
        model(torch.randn(1, 1, 6, 6), torch.tensor([0]))
