"""What the orchestration costs: DAG build time at paper scale, and SLURM against the local executor.

    python bench/bench_orchestration.py                      # both measurements
    python bench/bench_orchestration.py --skip-slurm         # only the dry-run timing
    python bench/bench_orchestration.py --target all         # the whole smoke DAG (default: gated_attention)

1. `snakemake -n` on config/presets/paper.yaml (the full DAG, no data or GPU needed):
   wall time (median of --repeats) and job count. Target: ≤ 5 s for ≥ 300 jobs.
2. The smoke preset's --target through a real one-node SLURM (started here from Debian's
   packages, as in tests/cluster/; needs root) with profiles/slurm (site settings filled in),
   and through the local executor with --cores = the node's CPUs, each in a fresh directory.
   Reports both wall times and their ratio. Numbers depend on what else runs on the machine.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "cluster"))

from cluster_support import SMOKE, SNAKEFILE, snakemake, write_site_profile  # noqa: E402
from slurm_local import LocalSlurm, SlurmUnavailable  # noqa: E402

PAPER = REPO / "config" / "presets" / "paper.yaml"


def dry_run(configfile: Path, workdir: Path) -> tuple[float, int]:
    t = time.perf_counter()
    out = snakemake(["-n", "--quiet", "rules", "--snakefile", str(SNAKEFILE), "--configfile", str(configfile),
                     "--cores", "1"], workdir, log_name="dryrun.log")
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{(out.stdout + out.stderr)[-3000:]}")
    m = re.search(r"^total\s+(\d+)", out.stdout + out.stderr, flags=re.M)
    return wall, int(m.group(1)) if m else -1


def timed_run(args: list[str], workdir: Path) -> float:
    t = time.perf_counter()
    out = snakemake(args, workdir, timeout=3600)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args[:3])} failed in {workdir}:\n{(out.stdout + out.stderr)[-3000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--target", default="gated_attention", help="smoke-preset target to time (e.g. all)")
    ap.add_argument("--skip-slurm", action="store_true")
    args = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_orch_") as tmp:
        tmp = Path(tmp)
        walls = []
        for i in range(args.repeats):
            d = tmp / f"dry{i}"
            d.mkdir()
            wall, jobs = dry_run(PAPER, d)
            walls.append(wall)
        ok = statistics.median(walls) <= 5.0 and jobs >= 300
        rows.append(("`snakemake -n`, paper preset", f"{statistics.median(walls):.2f} s", f"{jobs} jobs",
                     "target ≤ 5 s for ≥ 300 jobs: " + ("met" if ok else "NOT met")))

        if not args.skip_slurm:
            cluster = LocalSlurm(tmp / "slurm")
            try:
                cluster.start()
            except SlurmUnavailable as exc:
                rows.append(("smoke through SLURM", "skipped", "", str(exc)))
            else:
                import os

                os.environ.update(cluster.env)
                try:
                    base = [args.target, "--snakefile", str(SNAKEFILE), "--configfile", str(SMOKE)]
                    (tmp / "local").mkdir()
                    local = timed_run([*base, "--cores", str(cluster.cpus)], tmp / "local")
                    profile = write_site_profile(tmp / "profile")
                    (tmp / "slurm_run").mkdir()
                    on_slurm = timed_run([*base, "--profile", str(profile)], tmp / "slurm_run")
                finally:
                    cluster.stop()
                rows.append((f"smoke `{args.target}`, local executor", f"{local:.0f} s", f"--cores {cluster.cpus}", ""))
                rows.append((f"smoke `{args.target}`, local SLURM", f"{on_slurm:.0f} s", f"{cluster.cpus} CPUs, 1 node",
                             f"ratio SLURM/local {on_slurm / local:.2f}"))

    print("| measurement | time | size | note |\n| --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
