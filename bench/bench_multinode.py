"""What a second node costs: rendezvous time and step time of one training job on 1 and 2 SLURM nodes.

    python bench/bench_multinode.py                 # dense smoke model, 600 steps
    python bench/bench_multinode.py --ffn moe       # the MoE model, experts split over the ranks

Starts the two-node local SLURM of tests/cluster/ (node1, node2 on 127.0.0.2/3; needs root),
prepares the smoke preset's token shards, then runs the same `ga_train` job (TrainRun of
tests/cluster/cluster_support.py: smoke model, seed 0, --steps) through profiles/slurm as
1 node × 1 rank, 1 node × 2 ranks and 2 nodes × 1 rank, each in a fresh directory, one
after the other. Reports per layout: the job's wall time as Snakemake sees it, the
rendezvous time from the ranks' `rendezvous done in` lines (from a rank's call into
torch.distributed until all ranks met): the last rank to arrive gives the cost of meeting,
the first one also its wait for the others to start,
and the median step time from the run's metrics; ratios are against 1 node × 1 rank.
On one machine both "nodes" share its cores and talk over loopback: the numbers measure the
launch path and the collectives' software cost, not a network.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "cluster"))

from cluster_support import SMOKE, SNAKEFILE, TEXT_DATA, TrainRun, snakemake, write_site_profile  # noqa: E402
from slurm_local import LocalSlurm, SlurmUnavailable  # noqa: E402

LAYOUTS = ((1, 1), (1, 2), (2, 1))  # (nodes, ranks per node)


def prepare_data(work: Path) -> None:
    out = snakemake([str(TEXT_DATA / "manifest.json"), "--snakefile", str(SNAKEFILE), "--configfile", str(SMOKE),
                     "--cores", "1"], work)
    if out.returncode != 0:
        raise SystemExit(f"data preparation failed:\n{(out.stdout + out.stderr)[-3000:]}")


def one_layout(run: TrainRun, tmp: Path, data: Path, profile: Path) -> dict:
    from pipeline.io import read_parquet

    work, cfg = run.workdir(tmp, data)
    t = time.perf_counter()
    out = snakemake(run.slurm_args(cfg, profile, "--retries", "0"), work, timeout=3600)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{run} failed:\n{(out.stdout + out.stderr)[-3000:]}\n{(work / run.log).read_text()[-3000:]}")
    text = (work / run.log).read_text()
    met = [float(s) for s in re.findall(r"rendezvous done in ([\d.]+) s", text)]
    steps = read_parquet(work / run.target).column("step_time").to_pylist()[1:]  # the first includes warm-up
    return {"wall": wall, "rendezvous": (min(met), max(met)) if met else None, "step": statistics.median(steps)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ffn", choices=("dense", "moe"), default="dense")
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_multinode_") as tmp:
        tmp = Path(tmp)
        cluster = LocalSlurm(tmp / "slurm", nodes=2)
        try:
            cluster.start()
        except SlurmUnavailable as exc:
            raise SystemExit(f"cannot start a local two-node SLURM: {exc}") from exc
        os.environ.update(cluster.env)
        results = {}
        try:
            data = tmp / "data"
            prepare_data(data)
            profile = write_site_profile(tmp / "profile")
            for nodes, ranks in LAYOUTS:
                run = TrainRun(ffn=args.ffn, nodes=nodes, ranks_per_node=ranks, steps=args.steps,
                               ckpt_every=args.steps)
                results[nodes, ranks] = one_layout(run, tmp, data, profile)
        finally:
            cluster.stop()

    base = results[1, 1]
    print(f"| layout ({args.ffn}, {args.steps} steps) | job wall | rendezvous (last / first rank) | median step "
          "| step vs 1×1 |")
    print("| --- | --- | --- | --- | --- |")
    for (nodes, ranks), r in results.items():
        rdv = "— (one rank)" if r["rendezvous"] is None else f"{r['rendezvous'][0]:.2f} s / {r['rendezvous'][1]:.2f} s"
        print(f"| {nodes} node(s) × {ranks} rank(s) | {r['wall']:.0f} s | {rdv} | {r['step'] * 1e3:.1f} ms "
              f"| {r['step'] / base['step']:.2f} |")


if __name__ == "__main__":
    main()
