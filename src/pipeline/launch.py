"""Start a training entry point on N ranks: in-process, torchrun, or srun under SLURM.

    python -m pipeline.launch --nproc N package.module:function --spec '<json>' --job '<json>'

The entry is called as `function(spec: dict)` on every rank; `--job '{"rule": ..., "wildcards": ...}'`
names the job for its tracker (PIPELINE_JOB), and the settings that change no number (threads, tracking)
come from PIPELINE_RUNTIME: see pipeline.job, the set-up every entry runs first. Inside a SLURM allocation (and
not already inside a job step) it runs `srun -n N`: one task per GPU, ranks from SLURM's
variables, and the tasks are what `--signal` reaches before the time limit. Elsewhere N > 1
uses `torchrun --standalone`. PIPELINE_LAUNCHER=local|torchrun|srun overrides the choice.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys

IDENTITY_ENV = "PIPELINE_JOB"  # who the job is ({rule, wildcards}); read by pipeline.job, inherited by every rank
RUNTIME_ENV = "PIPELINE_RUNTIME"  # how jobs run ({threads, tracking}); read by pipeline.job
PYTHON_ENV = "PIPELINE_PYTHON"  # the interpreter launched jobs start with (rules' shell commands say "$PIPELINE_PYTHON")


def export_runtime(config: dict) -> None:
    """Called once at DAG build: what changes no number reaches every job through the environment (local
    processes and SLURM jobs alike), never through a rule's params or shell command, so a changed tracking
    server, thread count or venv location re-runs nothing."""
    from pathlib import Path

    from pipeline.tracking import JOURNAL_DIR

    os.environ[PYTHON_ENV] = sys.executable
    tracking = {**config["tracking"], "journal": str(Path(JOURNAL_DIR).resolve())}  # deferred runs' journals
    os.environ[RUNTIME_ENV] = json.dumps({"threads": config["train"]["threads"], "tracking": tracking})


def call_entry(target: str, spec: dict) -> None:
    module, _, func = target.partition(":")
    if not func:
        raise SystemExit(f"entry point must look like 'package.module:function', got {target!r}")
    getattr(importlib.import_module(module), func)(spec)


def choose(nproc: int) -> str:
    forced = os.environ.get("PIPELINE_LAUNCHER", "auto")
    if forced != "auto":
        return forced
    if "SLURM_JOB_ID" in os.environ and "SLURM_STEP_ID" not in os.environ:
        return "srun"
    return "local" if nproc == 1 else "torchrun"


def command(nproc: int, target: str, spec_json: str, launcher: str) -> list[str]:
    worker = ["-m", "pipeline.launch", "--worker", target, "--spec", spec_json]  # PIPELINE_JOB goes by environment
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={nproc}", *worker]
    if launcher == "srun":
        return ["srun", f"--ntasks={nproc}", "--kill-on-bad-exit=1", sys.executable, *worker]
    raise SystemExit(f"unknown launcher {launcher!r} (PIPELINE_LAUNCHER must be local, torchrun or srun)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", type=int, default=1)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("target")
    ap.add_argument("--spec", required=True, help="JSON object passed to the entry point")
    ap.add_argument("--job", help="JSON {rule, wildcards}: who this job is, for its tracker (see pipeline.job)")
    args = ap.parse_args(argv)
    os.environ[IDENTITY_ENV] = args.job or os.environ.get(IDENTITY_ENV) or json.dumps({"rule": args.target, "wildcards": {}})
    try:
        spec = json.loads(args.spec)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--spec is not valid JSON: {exc}") from exc
    launcher = "local" if args.worker else choose(args.nproc)
    if launcher == "local":
        call_entry(args.target, spec)
        return
    cmd = command(args.nproc, args.target, args.spec, launcher)
    print("launch:", shlex.join(cmd[:6]), "...", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
