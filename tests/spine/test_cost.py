"""The cost command's counts against independent ones: torch's FLOP counter and a measured CPU peak."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from pipeline.config import load_config
from pipeline.cost import GIB, estimate, main, report, transformer_memory
from pipeline.models.transformer import Transformer, TransformerConfig
from tests.conftest import PAPER



@pytest.mark.parametrize("gate", ["none", "headwise", "elementwise"])
def test_transformer_flops_match_torch_flop_counter(gate):
    """6·N + 12·L·d·T per token against FlopCounterMode over a real forward and backward.

    The math SDPA backend makes attention two counted matmuls (the CPU flash kernel is not in the
    counter's table); the counter counts a full T×T score matrix, as the formula does.
    """
    cfg = TransformerConfig(vocab_size=97, d_model=64, n_layers=3, n_heads=4, max_seq_len=48, gate=gate)
    model = Transformer(cfg)
    x = torch.randint(0, 97, (2, 48))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x).float().logsumexp(-1).mean().backward()
    counted = counter.get_total_flops()
    assert cfg.flops_per_token(48) * x.numel() == pytest.approx(counted, rel=0.01)


@pytest.mark.parametrize("gate", ["none", "elementwise"])
def test_closed_form_param_count_matches_the_module(gate):
    cfg = TransformerConfig(vocab_size=50, d_model=48, n_layers=2, n_heads=4, gate=gate)
    assert cfg.param_count() == Transformer(cfg).num_params(exclude_embedding=False)


MEASURE = r"""
import json, sys
import torch
from pipeline.models.transformer import Transformer, TransformerConfig
d, L, V, T, B, gate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
w = Transformer(TransformerConfig(vocab_size=16, d_model=16, n_layers=1, n_heads=2, max_seq_len=8))
o = torch.optim.AdamW(w.parameters()); w(torch.zeros(1, 8, dtype=torch.long)).sum().backward(); o.step()
del w, o  # kernels and allocator warmed up: their one-time memory is in the baseline


def status(key):  # kB -> bytes, from the kernel's accounting of this process's memory
    return int(next(line for line in open("/proc/self/status") if line.startswith(key)).split()[1]) * 1024


open("/proc/self/clear_refs", "w").write("5")  # VmHWM restarts from the current RSS
base = status("VmRSS:")
m = Transformer(TransformerConfig(vocab_size=V, d_model=d, n_layers=L, n_heads=d // 64, max_seq_len=T, gate=gate))
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
x = torch.randint(0, V, (B, T + 1))
for _ in range(3):
    loss = torch.nn.functional.cross_entropy(m(x[:, :-1]).reshape(-1, V), x[:, 1:].reshape(-1))
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); del loss
print(json.dumps(status("VmHWM:") - base))
"""


@pytest.mark.parametrize("shape", [(256, 4, 1024, 128, 8, "none"), (128, 2, 4096, 128, 16, "elementwise")],
                         ids=["layers-heavy", "vocab-heavy"])
def test_memory_estimate_matches_a_measured_cpu_peak(shape):
    """fp32 training steps in a fresh process: peak RSS (VmHWM, reset after warm-up) above the baseline vs the estimate.

    Not getrusage's ru_maxrss: Linux keeps the parent's across fork and exec, so a large pytest process
    would inflate it.

    Tolerance 15%: the estimate counts the tensors autograd and Adam keep, not the allocator's rounding
    or short-lived temporaries (SwiGLU's chunk, softmax workspaces), which measured 1–5% at these sizes.
    MALLOC_MMAP_THRESHOLD_ makes glibc return freed tensors to the OS, so RSS follows live memory
    (without it, reused heap pages inflate the peak by 20–50%).
    """
    d, L, V, T, B, gate = shape
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", MEASURE, *map(str, shape)], capture_output=True, text=True,
                         env=env, check=True)
    measured = json.loads(out.stdout)
    cfg = TransformerConfig(vocab_size=V, d_model=d, n_layers=L, n_heads=d // 64, max_seq_len=T, gate=gate)
    assert transformer_memory(cfg, B, T, "fp32") == pytest.approx(measured, rel=0.15)


def test_moe_gating_memory_grows_with_the_square_of_tokens():
    cfg = TransformerConfig(vocab_size=100, d_model=64, n_layers=2, n_heads=4, ffn="moe", n_experts=4)
    dense = TransformerConfig(vocab_size=100, d_model=64, n_layers=2, n_heads=4)
    extra = [transformer_memory(cfg, b, 1024) - transformer_memory(dense, b, 1024) for b in (1, 2, 4)]
    assert extra[2] - extra[1] > 1.9 * (extra[1] - extra[0])  # superlinear: the tokens² gating tensors


def test_zero_stages_shard_what_they_should():
    cfg = TransformerConfig(vocab_size=1000, d_model=256, n_layers=4, n_heads=4)
    mem = [transformer_memory(cfg, 1, 16, "bf16", zero_stage=z, world=8) for z in (0, 1, 2, 3)]
    assert mem[0] > mem[1] > mem[2] > mem[3]


def test_the_paper_preset_fits_an_80gb_gpu_and_every_study_has_a_cost():
    items = estimate(load_config(PAPER))
    assert {i.study for i in items} == {"gated_attention", "diffusion", "crl", "rlvr", "hivemind"}
    too_big = [(i.study, i.what, round(i.mem_bytes / GIB, 1)) for i in items if i.mem_bytes > 80 * GIB]
    assert not too_big, f"paper preset jobs over 80 GiB per rank: {too_big}"
    hours = {s: sum(i.gpu_hours(0.4) for i in items if i.study == s) for s in {i.study for i in items}}
    assert all(h > 0 for h in hours.values()), hours


def test_report_names_every_study_and_a_total(capsys):
    text = report(load_config(PAPER), {"crl": 3}, gpu_mem_gb=80, mfu=0.4)
    for study in ("gated_attention", "diffusion", "crl", "rlvr", "hivemind", "total"):
        assert f"| {study} |" in text
    main(["--configfile", str(PAPER), "--no-dag", "--gpu-mem-gb", "1", "--mfu", "0.5"])
    out = capsys.readouterr().out
    assert "MFU 0.5" in out and "over the GPU's memory" in out  # nothing big fits in 1 GiB


@pytest.mark.parametrize("stack", [[], ["smoke.yaml"], ["gpu.yaml"], ["paper.yaml", "rehearsal.yaml"]],
                         ids=lambda s: "+".join(s) or "default")
def test_every_preset_has_a_cost(stack):
    items = estimate(load_config(*[PAPER.parent / name for name in stack]))
    assert {i.study for i in items} == {"gated_attention", "diffusion", "crl", "rlvr", "hivemind"}
    assert all(i.mem_bytes > 0 and i.train_flops >= 0 for i in items)


@pytest.mark.slow
def test_the_paper_dag_is_counted_without_its_data():
    """The paper preset's data paths are placeholders for the user's; the job count must not need them.
    Stacks go after one --configfile: the rehearsal's counts differ from the paper's."""
    from pipeline.cost import dag_jobs

    paper = dag_jobs([str(PAPER)])
    assert set(paper) == {"gated_attention", "diffusion", "crl", "rlvr", "hivemind"} and all(paper.values())
    rehearsal = dag_jobs([str(PAPER), str(PAPER.parent / "rehearsal.yaml")])
    assert rehearsal["crl"] < paper["crl"]

