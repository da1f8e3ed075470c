"""What a config will cost before it is submitted: jobs, FLOPs, memory per rank and GPU-hours, per study.

    python -m pipeline.cost --configfile config/presets/paper.yaml [--gpu-mem-gb 80] [--mfu 0.4]

From the config alone, in seconds: no data, no GPU, no model built at full size. Jobs come from
Snakemake's own dry run (`snakemake -n`), so they are the DAG's. FLOPs are counted in closed form
for the transformers (`TransformerConfig.flops_per_token`, tested against torch's FlopCounterMode)
and the CRL MLPs (6·params per sample), and by torch's FlopCounterMode over one image for the
diffusion denoiser. Memory per rank is weights + gradients + optimiser state (ZeRO-sharded) + the activations
kept for backward (tested against a measured CPU peak). GPU-hours = FLOPs / (MFU · peak of the
job's precision): a floor, since sampling and small networks run far below the stated MFU.
"""
from __future__ import annotations

import argparse
import copy
import functools
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


from pipeline.config import REPO, load_config, validate_config
from pipeline.models.transformer import TransformerConfig

# Dense peak TFLOP/s of one H100 SXM: bf16 tensor cores; fp32 without TF32 (PyTorch's default for matmuls).
PEAK_TFLOPS = {"bf16": 989.0, "fp32": 67.0}
RULE_PREFIX = {"ga_": "gated_attention", "text_manifest": "gated_attention", "train_tokenizer": "gated_attention",
               "tokenize_shard": "gated_attention", "diffusion_": "diffusion", "crl_": "crl", "rlvr_": "rlvr",
               "hivemind_": "hivemind"}
GIB = 1024 ** 3


@dataclass
class Item:
    """`runs` identical jobs of one study: FLOPs per run (training; sampling/evaluation) and memory per rank."""

    study: str
    what: str
    runs: int
    train_flops: float
    other_flops: float
    mem_bytes: float
    precision: str = "fp32"

    def gpu_hours(self, mfu: float) -> float:
        return self.runs * (self.train_flops + self.other_flops) / (mfu * PEAK_TFLOPS[self.precision] * 1e12) / 3600


# -- transformers ------------------------------------------------------------------------------------------
def transformer_memory(cfg: TransformerConfig, micro_batch: int, seq_len: int, precision: str = "fp32",
                       zero_stage: int = 0, world: int = 1) -> float:
    """Peak bytes on one rank while training: ZeRO-sharded weights/grads/optimiser + saved activations.

    Per parameter: bf16 keeps 2 (weights) + 2 (grads) + 12 (fp32 master and Adam's two moments) bytes,
    fp32 4 + 4 + 8; ZeRO stage ≥ 1 shards the optimiser, ≥ 2 the gradients, 3 the weights over the
    data-parallel ranks (experts over world/ep_size). Activations per token and layer: what autograd
    keeps for backward — both RMSNorms' inputs, normalised values and outputs, q/k/v after RoPE, the
    attention output (SDPA keeps no T×T matrix) and its reshaped copy, the gate, the SwiGLU tensors
    (12·d + 4·d_ff elements; MoE: top_k·capacity_factor copies of the expert part, plus the gating's
    tokens² terms); plus vocabulary-sized tensors per token: the logits and, in fp32, the log-softmax and
    its gradient at the backward's peak.
    """
    d, f, L, V = cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.vocab_size
    w, g, o = (2, 2, 12) if precision == "bf16" else (4, 4, 8)

    def sharded(n: float, dp: float) -> float:
        dp = max(dp, 1.0)
        return n * (w / (dp if zero_stage >= 3 else 1) + g / (dp if zero_stage >= 2 else 1) + o / (dp if zero_stage >= 1 else 1))

    experts = L * cfg.n_experts * 3 * d * f if cfg.ffn == "moe" else 0
    static = sharded(cfg.param_count() - experts, world) + sharded(experts / cfg.ep_size, world / cfg.ep_size)
    gate = {"none": 0, "headwise": 2 * cfg.n_heads, "elementwise": 2 * d}[cfg.gate]
    ffn = 4 * f if cfg.ffn == "dense" else cfg.top_k * cfg.capacity_factor * (4 * f + 2 * d)
    act_bytes = 2 if precision == "bf16" else 4
    per_token = L * (12 * d + gate + ffn) * act_bytes + V * (act_bytes + 8)
    tokens = micro_batch * seq_len
    # DeepSpeed's top-k gating (sharded_moe.top2gating) keeps tokens × experts × capacity tensors for backward,
    # capacity = top_k · capacity_factor · tokens / experts: the combine weights (fp32), the dispatch mask
    # (bool) and its copy in the activations' dtype for the dispatch einsum. Quadratic in a micro-step's tokens.
    gating = L * cfg.top_k * cfg.capacity_factor * tokens ** 2 * (5 + act_bytes) if cfg.ffn == "moe" else 0
    return static + tokens * per_token + gating


@functools.lru_cache
def hf_shape(path: str) -> TransformerConfig:
    """The shape of a local HF causal LM (GGUF metadata or config.json) as a spine config, for counting.

    Grouped-query attention is counted as full attention (an overestimate of a few per cent).
    """
    import json

    from pipeline.models.store import resolve

    directory, gguf = resolve(path)
    if gguf:
        from gguf import GGUFReader

        fields = GGUFReader(str(directory / gguf)).fields
        arch = bytes(fields["general.architecture"].parts[-1]).decode()
        get = lambda k: int(fields[f"{arch}.{k}"].parts[-1][0])  # noqa: E731
        vocab = get("vocab_size") if f"{arch}.vocab_size" in fields else len(fields["tokenizer.ggml.tokens"].data)
        return TransformerConfig(vocab_size=vocab, d_model=get("embedding_length"), n_layers=get("block_count"),
                                 n_heads=get("attention.head_count"), d_ff=get("feed_forward_length"),
                                 max_seq_len=get("context_length"))
    c = json.loads((directory / "config.json").read_text())
    return TransformerConfig(vocab_size=c["vocab_size"], d_model=c["hidden_size"], n_layers=c["num_hidden_layers"],
                             n_heads=c["num_attention_heads"], d_ff=c.get("intermediate_size", 0),
                             max_seq_len=c.get("max_position_embeddings", 2048),
                             tie_embeddings=c.get("tie_word_embeddings", True))


def _world(train: Mapping[str, Any]) -> int:
    return int(train["nodes"]) * int(train["ranks_per_node"])


def _micro(train: Mapping[str, Any]) -> int:
    return max(1, int(train["batch_size"]) // (_world(train) * int(train["grad_accum"])))


def gated_attention(study: Mapping[str, Any], config: Mapping[str, Any]) -> list[Item]:
    from pipeline.studies.gated_attention.specs import model_config, regimes, train_config

    ev = study["eval"]
    out = []
    for regime, ffn in regimes(study):
        m, t = model_config(study, regime), train_config(study, regime)
        seq = int(m["seq_len"])
        for gate in ("none", study["gate"]):
            cfg = TransformerConfig(vocab_size=int(config["data"]["text"]["vocab_size"]), d_model=m["d_model"],
                                    n_layers=m["n_layers"], n_heads=m["n_heads"], max_seq_len=seq, gate=gate, ffn=ffn,
                                    n_experts=m["n_experts"], top_k=m["top_k"], ep_size=m["ep_size"])
            train = cfg.flops_per_token(seq) * int(t["steps"]) * int(t["batch_size"]) * seq
            evals = sum(cfg.flops_per_token(seq * k) / 3 * int(ev["batches"]) * int(ev["batch_size"]) * seq
                        for k in ev["context_multipliers"])
            mem = transformer_memory(cfg, _micro(t), seq, t["precision"], int(t["zero_stage"]), _world(t))
            out.append(Item("gated_attention", f"{ffn} {gate} {regime}", len(study["seeds"]), train, evals, mem,
                            t["precision"]))
    return out


def rlvr(study: Mapping[str, Any], config: Mapping[str, Any]) -> list[Item]:
    task, samp, ev = study["task"], study["sampling"], study["eval"]
    n_terms = max(task["n_terms"]) if task["source"] == "generated" else 8
    prompt = (int(task["digits"]) + 1) * n_terms + (32 if study["model"].get("chat_template") else 0)
    new = int(samp["max_new_tokens"])
    seq = prompt + new

    def shape(model: Mapping[str, Any]) -> TransformerConfig:
        if model["kind"] == "hf":
            return hf_shape(model["path"])
        return TransformerConfig(vocab_size=64, **{k: model[k] for k in ("d_model", "n_layers", "n_heads", "max_seq_len")})

    base, teacher = shape(study["model"]), shape(study["teacher"]["model"])
    fwd = lambda cfg, tokens: cfg.flops_per_token(seq) / 3 * tokens  # noqa: E731
    out = []
    for name, cfg, block, runs in (("base", base, study["base"], 1), ("teacher", teacher, study["teacher"], 1),
                                   ("distill", base, study["distill"], len(study["distill"]["seeds"]))):
        t = block["train"]
        train = cfg.flops_per_token(seq) * int(t["steps"]) * int(t["batch_size"]) * seq
        other = fwd(teacher, study["distill"]["n_prompts"] * study["distill"]["samples_per_prompt"] * seq) \
            if name == "teacher" else 0.0
        mem = transformer_memory(cfg, _micro(t), seq, t["precision"], int(t["zero_stage"]), _world(t))
        out.append(Item("rlvr", name, runs, train, other, mem, t["precision"]))
    rl, t = study["rl"], study["rl"]["train"]
    rollouts = int(t["steps"]) * int(t["batch_size"]) * int(rl["group_size"]) * seq
    kl = fwd(base, rollouts) if float(rl["kl_coef"]) > 0 else 0.0
    out.append(Item("rlvr", "rl", len(rl["algorithms"]) * len(rl["seeds"]), base.flops_per_token(seq) * rollouts,
                    fwd(base, rollouts) + kl,
                    transformer_memory(base, _micro(t) * int(rl["group_size"]), seq, t["precision"],
                                       int(t["zero_stage"]), _world(t)) + (2 * base.param_count() if kl else 0),
                    t["precision"]))  # the KL reference: frozen 16-bit weights, no activations kept
    n_models = 2 + len(study["distill"]["seeds"]) + len(rl["algorithms"]) * len(rl["seeds"])
    kv_cache = 2 * base.n_layers * int(samp["batch_size"]) * seq * base.d_model * 4
    out.append(Item("rlvr", "evaluate", n_models, 0.0,
                    fwd(base, int(task["n_heldout"]) * int(ev["n_samples"]) * seq) * 2,
                    2 * 4 * base.param_count() + kv_cache, "bf16"))  # the model and the base, fp32
    return out


def hivemind(study: Mapping[str, Any], config: Mapping[str, Any]) -> list[Item]:
    p, gen = study["prompts"], study["generation"]
    n_prompts = sum(int(p[s]["limit"] or 100) for s in ("project", "blabber", "infinity_chat") if p[s]["enabled"])
    out = []
    for m in study["models"]:
        if not m["enabled"] or m["kind"] != "hf":
            continue
        cfg = hf_shape(m["path"])
        seq = 64 + int(gen["max_new_tokens"])
        tokens = n_prompts * int(gen["n_samples"]) * len(m["decoding"]) * seq
        out.append(Item("hivemind", f"generate {m['name']}", 1, 0.0, cfg.flops_per_token(seq) / 3 * tokens,
                        cfg.param_count() * 2 + int(gen["batch_size"]) * seq * cfg.n_layers * 2 * cfg.d_model * 2,
                        "bf16"))
    return out


def crl(study: Mapping[str, Any], config: Mapping[str, Any]) -> list[Item]:
    from pipeline.studies.crl.config import env_dims, networks, parse
    from pipeline.studies.crl.sizing import agent_params

    cfg = parse(study)
    a, dims = cfg.algo, env_dims(cfg.env)
    rounds = a.total_env_steps // (a.num_envs * a.unroll_length)
    out = []
    for net in networks(cfg):
        p = agent_params(dims, net["width"], net["depth"], cfg.network.repr_dim, cfg.network.actor_width,
                         cfg.network.actor_depth)
        phi = p["critic"] // 2
        updates = rounds * a.updates_per_round
        train = 6.0 * a.batch_size * (p["critic"] + p["actor"] + phi) * updates
        acting = 2.0 * p["actor"] * a.total_env_steps
        buffer = a.buffer_size * a.num_envs * (dims.obs + dims.action + dims.goal + 2) * 4
        act = a.batch_size * net["width"] * (net["depth"] + 2) * 4 * 4 * 3
        out.append(Item("crl", net["name"], len(cfg.seeds), train, acting, 16 * p["total"] + buffer + act, "fp32"))
    return out


def _denoiser_counts(study: Mapping[str, Any], batch: int) -> tuple[float, float, int]:
    """(training FLOPs per image, saved-activation bytes for `batch`, params) of the study's denoiser.

    Counted by torch's FlopCounterMode and a saved-tensors hook over one image's forward and backward on
    the CPU (milliseconds at these sizes); both scale linearly with the batch.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline.studies.diffusion.denoiser import build_denoiser

    size = int(study["data"]["image_size"] or {"digits": 8, "mnist": 28}.get(study["data"]["source"], 32))  # data.load_source
    model = build_denoiser(study["model"], (1, size, size))
    x, t = torch.zeros(1, 1, size, size), torch.zeros(1, dtype=torch.long)
    saved = []
    with FlopCounterMode(display=False) as counter, \
            torch.autograd.graph.saved_tensors_hooks(lambda x: saved.append(x.numel() * x.element_size()) or x,
                                                     lambda x: x):
        model(x, t).pow(2).mean().backward()
    return float(counter.get_total_flops()), float(sum(saved)) * batch, sum(p.numel() for p in model.parameters())


def diffusion(study: Mapping[str, Any], config: Mapping[str, Any]) -> list[Item]:
    from pipeline.studies.diffusion.plan import export_steps, max_steps

    t, s = study["train"], study["sampling"]
    per_image, act, params = _denoiser_counts(study, int(t["batch"]))
    out = []
    for n in study["sizes"]:
        train = per_image * max_steps(n, t) * int(t["batch"])
        evals = len(export_steps(n, study)) * int(s["n_samples"]) * int(s["ddim_steps"]) * per_image / 3
        out.append(Item("diffusion", f"n={n}", len(study["seeds"]), train, evals, 16 * params + act, t["precision"]))
    return out


STUDIES = {"gated_attention": gated_attention, "diffusion": diffusion, "crl": crl, "rlvr": rlvr, "hivemind": hivemind}


def dag_jobs(configfiles: list[str]) -> dict[str, int]:
    """Jobs per study in Snakemake's own dry run of these config files (a preset's data placeholders are left
    out of a dry run's DAG: no job count depends on the data)."""
    exe = Path(sys.executable).parent / "snakemake"
    # one --configfile with every file: Snakemake keeps only the last of repeated flags
    proc = subprocess.run([str(exe), "-s", str(REPO / "Snakefile"), "-d", str(REPO), "-n", "--quiet", "rules",
                           "--configfile", *configfiles], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"snakemake -n failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    jobs: dict[str, int] = {}
    for rule, count in re.findall(r"^(\w+)\s+(\d+)$", proc.stdout + proc.stderr, re.M):
        study = next((s for p, s in RULE_PREFIX.items() if rule.startswith(p)), None)
        if study:
            jobs[study] = jobs.get(study, 0) + int(count)
    return jobs


def estimate(config: Mapping[str, Any]) -> list[Item]:
    """What each enabled study's jobs cost, from the config as the workflow sees it (validated, defaults filled)."""
    config = validate_config(copy.deepcopy(dict(config)))
    return [item for name, fn in STUDIES.items() if config["studies"][name]["enabled"]
            for item in fn(config["studies"][name], config)]


def report(config: Mapping[str, Any], jobs: Mapping[str, int], gpu_mem_gb: float, mfu: float) -> str:
    items = estimate(config)
    lines = [f"cost of `{config['scale']}` at MFU {mfu} (peak TFLOP/s: bf16 {PEAK_TFLOPS['bf16']:g}, "
             f"fp32 {PEAK_TFLOPS['fp32']:g}; one H100 SXM), GPU memory {gpu_mem_gb:g} GiB",
             "",
             "| study | jobs | runs | training PFLOP | sampling/eval PFLOP | max memory per rank GiB | fits | GPU-hours |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    tot = {"jobs": 0, "runs": 0, "train": 0.0, "other": 0.0, "hours": 0.0, "mem": 0.0}
    for study in STUDIES:
        rows = [i for i in items if i.study == study]
        if not rows:
            continue
        runs = sum(i.runs for i in rows)
        train = sum(i.runs * i.train_flops for i in rows) / 1e15
        other = sum(i.runs * i.other_flops for i in rows) / 1e15
        mem = max(i.mem_bytes for i in rows) / GIB
        hours = sum(i.gpu_hours(mfu) for i in rows)
        lines.append(f"| {study} | {jobs.get(study, '?')} | {runs} | {train:.4g} | {other:.4g} | {mem:.3g} | "
                     f"{'yes' if mem <= gpu_mem_gb else 'NO'} | {hours:.3g} |")
        for k, v in (("jobs", jobs.get(study, 0)), ("runs", runs), ("train", train), ("other", other),
                     ("hours", hours)):
            tot[k] += v
        tot["mem"] = max(tot["mem"], mem)
    lines.append(f"| total | {tot['jobs']} | {tot['runs']} | {tot['train']:.4g} | {tot['other']:.4g} | "
                 f"{tot['mem']:.3g} | {'yes' if tot['mem'] <= gpu_mem_gb else 'NO'} | {tot['hours']:.3g} |")
    over = [i for i in items if i.mem_bytes / GIB > gpu_mem_gb]
    if over:
        lines += ["", "over the GPU's memory: " + ", ".join(f"{i.study} {i.what} ({i.mem_bytes / GIB:.3g} GiB)"
                                                           for i in over)]
    lines += ["", "GPU-hours are FLOPs / (MFU × peak): a floor. Sampling, small networks (CRL, the U-Net) and "
                  "evaluation run far below the stated MFU; measure with bench/gpu_check.sh."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m pipeline.cost", description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", nargs="+", default=[], help="preset overlays, as given to snakemake")
    ap.add_argument("--gpu-mem-gb", type=float, default=80.0, help="memory of one GPU in GiB (default 80)")
    ap.add_argument("--mfu", type=float, default=0.4, help="model FLOP utilisation assumed (default 0.4)")
    ap.add_argument("--no-dag", action="store_true", help="skip counting jobs with snakemake -n")
    args = ap.parse_args(argv)
    config = load_config(*args.configfile)
    jobs = {} if args.no_dag else dag_jobs(args.configfile)
    print(report(config, jobs, args.gpu_mem_gb, args.mfu))


if __name__ == "__main__":
    main()
