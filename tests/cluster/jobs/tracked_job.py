"""A small job that writes its metrics to Parquet and mirrors them through pipeline.tracking.

Why: the tracking tests need several real processes logging at once (to an MLflow server,
or to one sqlite store), with a way to hold them at a point so the test can stop the server
between the first and the second half of their metrics.

    python tracked_job.py --name NAME --out DIR --steps N [--uri URI] [--flush-every K]
                          [--hold-at STEP --ready FILE --go FILE]
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from pipeline.io import write_parquet
from pipeline.tracking import Tracker


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--uri", default=None)
    ap.add_argument("--flush-every", type=int, default=0, help="flush the mirror every K steps (0: at the end)")
    ap.add_argument("--hold-at", type=int, default=0, help="after this step: flush, touch --ready, wait for --go")
    ap.add_argument("--ready", type=Path)
    ap.add_argument("--go", type=Path)
    ap.add_argument("--start-at", type=float, default=0.0, help="wall-clock time to start at (to line jobs up)")
    args = ap.parse_args()

    while time.time() < args.start_at:
        time.sleep(0.01)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with Tracker("cluster_tests", "tracked_job", wildcards={"name": args.name},
                 params={"steps": args.steps, "name": args.name}, uri=args.uri) as tracker:
        for step in range(1, args.steps + 1):
            row = {"step": step, "loss": 1.0 / step, "acc": 1.0 - math.exp(-step / 10)}
            rows.append(row)
            tracker.log_metrics({k: v for k, v in row.items() if k != "step"}, step)
            if args.flush_every and step % args.flush_every == 0:
                tracker.flush()
            if args.hold_at and step == args.hold_at:
                tracker.flush()
                args.ready.touch()
                while not args.go.exists():
                    time.sleep(0.05)
        write_parquet(rows, args.out / "metrics.parquet")
        note = args.out / "note.txt"
        note.write_text(f"job {args.name}: {args.steps} steps\n")
        tracker.log_artifact(note)
    print(f"job {args.name} done", flush=True)


if __name__ == "__main__":
    main()
