"""CRL benchmarks: environment steps per second and learner updates per second per depth.

    python bench/bench_crl.py                          # CPU, 1 thread, the issue's table
    python bench/bench_crl.py --device cuda --width 256 --batch 512 --depths 4 16 64 256 1024

Env: the torch point-mass U-maze stepped with random actions at 1k and 10k parallel envs
(and the actor's forward pass included, "with policy"). Learner: one CRL update (actor, α,
critic) on a fixed batch; the first few updates are warm-up and not timed. Prints a Markdown
table; numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import time

import torch

from pipeline.studies.crl.agent import AgentConfig, CRLAgent, CRLLearner
from pipeline.studies.crl.envs import PointMaze
from pipeline.studies.crl.sizing import Dims, agent_params


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def env_rate(n: int, device: torch.device, steps: int, agent: CRLAgent | None = None) -> float:
    env = PointMaze("umaze", n, device=device)
    g = torch.Generator(device=device).manual_seed(0)
    obs = env.reset(g)
    for _ in range(5):
        obs = env.step(torch.rand(n, 2, generator=g, device=device) * 2 - 1, g).obs
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        a = (agent.act(obs, env.goal, deterministic=False, generator=g) if agent is not None
             else torch.rand(n, 2, generator=g, device=device) * 2 - 1)
        obs = env.step(a, g).obs
    sync(device)
    return n * steps / (time.perf_counter() - t)


def update_rate(depth: int, width: int, batch: int, device: torch.device, seconds: float) -> float:
    torch.manual_seed(0)
    learner = CRLLearner(CRLAgent(AgentConfig(2, 2, 2, width=width, depth=depth)).to(device))
    g = torch.Generator(device=device).manual_seed(0)
    b = {k: torch.rand(batch, 2, generator=g, device=device) for k in ("obs", "action", "goal")}
    for _ in range(3):
        learner.update(b, g)
    sync(device)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        learner.update(b, g)
        n += 1
        if n % 5 == 0:
            sync(device)
    sync(device)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--envs", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--env-steps", type=int, default=200, help="vectorised steps timed per env count")
    ap.add_argument("--depths", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=3.0, help="time per depth")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {args.threads} thread(s), torch {torch.__version__}\n")
    print("| parallel envs | env steps/s (random actions) | env steps/s (with depth-4 actor, width {}) |".format(args.width))
    print("|---|---|---|")
    actor = CRLAgent(AgentConfig(2, 2, 2, width=args.width, depth=4)).to(device)
    for n in args.envs:
        print(f"| {n} | {env_rate(n, device, args.env_steps):,.0f} | "
              f"{env_rate(n, device, max(10, args.env_steps // 10), actor):,.0f} |")
    print(f"\n| depth | width | batch | parameters | updates/s |")
    print("|---|---|---|---|---|")
    for d in args.depths:
        params = agent_params(Dims(2, 2, 2), args.width, d)["total"]
        print(f"| {d} | {args.width} | {args.batch} | {params:,} | "
              f"{update_rate(d, args.width, args.batch, device, args.seconds):.1f} |", flush=True)


if __name__ == "__main__":
    main()
