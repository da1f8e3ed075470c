#!/usr/bin/env bash
# One prepared GPU check (≤ 8 min on one H100/H200): the paper rehearsal on cuda, then the GPU figures the
# README leaves unmeasured — training tokens/s and MFU in bf16 (gated attention, gpu preset model), sampling
# tokens/s (RLVR, KV cache), CRL env steps/s and learner updates/s.
#
#   bench/gpu_check.sh             # on a GPU node, from the repository root (uses .venv, or $PYTHON)
#   bench/gpu_check.sh --dry-run   # any machine, ~1-2 min: the same steps on the CPU at toy sizes, and the
#                                  # cuda rehearsal as a DAG only (snakemake -n); tests/spine/test_gpu_check.py
#
# Every step runs under its own time limit and the next one runs whatever happened; $OUT (default
# results/gpu_check) holds each step's log and summary.md: each step's status and its tables, to paste
# into the README's benchmark section. Exit status: 0 when every step passed.
set -uo pipefail

DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SNAKEMAKE="$(dirname "$PYTHON")/snakemake"
OUT="${OUT:-$ROOT/results/gpu_check}"
mkdir -p "$OUT"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
SUMMARY="$OUT/summary.md"
FAILED=0

if (( DRY )); then
  export DS_ACCELERATOR=cpu OMP_NUM_THREADS=1
  DEVICE=cpu
  echo "# GPU check — DRY RUN on the CPU (toy sizes; these numbers are not GPU figures)" > "$SUMMARY"
else
  export DS_ACCELERATOR=cuda
  DEVICE=cuda
  { echo "# GPU check, $(date -u +%FT%TZ)"; echo; nvidia-smi -L 2>&1 | sed 's/^/    /'; } > "$SUMMARY"
fi
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'GPU', torch.cuda.is_available())" \
  >> "$SUMMARY" 2>&1

# step NAME LIMIT_S CMD...: run CMD (on the GPU under a time limit: the check must fit its 8 minutes; a dry
# run has none, its speed is the CPU's), log to $OUT/NAME.log, append status and tables to the summary.
step() {
  local name="$1" limit="$2"; shift 2
  local log="$OUT/$name.log" start=$SECONDS rc
  echo ">> $name: $*"
  if (( DRY )); then "$@" > "$log" 2>&1; else timeout --signal=INT --kill-after=20 "$limit" "$@" > "$log" 2>&1; fi
  rc=$?
  local status="ok"
  (( rc == 124 || rc == 137 )) && status="TIMED OUT after ${limit}s"
  (( rc != 0 && rc != 124 && rc != 137 )) && status="FAILED (exit $rc)"
  (( rc != 0 )) && FAILED=1
  { echo; echo "## $name — $status, $((SECONDS - start)) s"; echo; echo "    $*"; echo
    grep -E '^\||^#|ratio|tokens/s|device' "$log" | grep -v '^#!' || true
    (( rc != 0 )) && { echo; echo '```'; tail -n 30 "$log"; echo '```'; }; } >> "$SUMMARY"
  echo "   $status ($((SECONDS - start)) s)"
}

# 1. The rehearsal of the paper preset on the device. One GPU: one rank per job (NCCL refuses two ranks on
#    one GPU), so expert parallelism and multi-rank ZeRO are left to the CPU rehearsal in make test.
REH="$OUT/rehearsal"
mkdir -p "$REH"
ln -sfn "$ROOT/tests" "$REH/tests"  # the rehearsal's data paths are relative to the working directory
cat > "$OUT/one_gpu.yaml" <<EOF
train: {device: $DEVICE, threads: 4}
studies:
  gated_attention:
    model: {ep_size: 1}
    train: {nodes: 1, ranks_per_node: 1}
  rlvr:
    distill: {train: {ranks_per_node: 1}}
    rl: {train: {ranks_per_node: 1}}
EOF
# One --configfile with all three files: Snakemake keeps only the last of repeated --configfile flags.
REH_ARGS=(-s "$ROOT/Snakefile" -d "$REH" --cores 8
          --configfile "$ROOT/config/presets/paper.yaml" "$ROOT/config/presets/rehearsal.yaml" "$OUT/one_gpu.yaml")
if (( DRY )); then
  sed -i 's/device: cpu/device: cuda/' "$OUT/one_gpu.yaml"  # the DAG of the real check, built without a GPU
  step rehearsal_cuda 0 "$SNAKEMAKE" "${REH_ARGS[@]}" -n --quiet rules
else
  step rehearsal_cuda 240 "$SNAKEMAKE" "${REH_ARGS[@]}" --keep-going
fi

# 2. Training tokens/s and MFU in bf16: the gpu preset's gated-attention model, six variants.
if (( DRY )); then
  step gated_attention_training 0 "$PYTHON" bench/bench_gated_attention.py --preset smoke --steps 1 --warmup 1
else
  step gated_attention_training 100 "$PYTHON" bench/bench_gated_attention.py --preset gpu --steps 10 --warmup 3 --threads 4
fi

# 3. Sampling tokens/s with and without the KV cache, and RL steps/s.
if (( DRY )); then
  step rlvr_sampling 0 "$PYTHON" bench/bench_rlvr.py --device cpu --batch 2 --new-tokens 4 --d-model 32 --layers 1 --rl-steps 2
else
  step rlvr_sampling 60 "$PYTHON" bench/bench_rlvr.py --device cuda --threads 4 --batch 256 --new-tokens 64 --rl-steps 10
fi

# 4. CRL environment steps/s at 1k and 10k envs, learner updates/s at the gpu preset's depths.
if (( DRY )); then
  step crl_throughput 0 "$PYTHON" bench/bench_crl.py --device cpu --envs 64 --env-steps 2 --depths 4 --width 16 --batch 32 --seconds 0.2
else
  step crl_throughput 60 "$PYTHON" bench/bench_crl.py --device cuda --envs 1000 10000 --width 256 --batch 512 --depths 4 16 64 --seconds 4
fi

echo; echo "summary: $SUMMARY"
exit $FAILED
