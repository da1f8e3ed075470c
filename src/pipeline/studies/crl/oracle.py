"""A planner that knows the maze: the ceiling a learned policy can approach, and a reachability check.

Each cell is split into `res × res` sub-cells; shortest paths between free sub-cells are found
on the 8-connected grid (no corner cutting) with Dijkstra. The policy moves in a straight line
toward the centre of the neighbouring sub-cell closest (along the maze) to the goal's sub-cell,
and straight at the goal once it is in the goal's sub-cell. Its time-at-goal is a lower bound
on the best achievable one, which makes it a fair "ceiling" for judging whether a network left
room for depth to help.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

from pipeline.studies.crl.envs import PointMaze

NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


class MazeOracle:
    """Distance field over sub-cells and the greedy policy that follows it."""

    def __init__(self, env: PointMaze, res: int = 4) -> None:
        self.env, self.res = env, res
        device = env.device
        fine_walls = env.walls.cpu().repeat_interleave(res, 0).repeat_interleave(res, 1).numpy()
        free = ~fine_walls
        fh, fw = free.shape
        ids = -np.ones((fh, fw), dtype=np.int64)
        ids[free] = np.arange(free.sum())
        n = int(free.sum())
        nbr = np.tile(np.arange(n)[:, None], (1, len(NEIGHBOURS)))  # invalid → stay put
        rows, cols, wts = [], [], []
        for r, c in zip(*np.nonzero(free)):
            for k, (dr, dc) in enumerate(NEIGHBOURS):
                rr, cc = r + dr, c + dc
                if not free[rr, cc] or (dr and dc and not (free[r + dr, c] and free[r, c + dc])):
                    continue
                nbr[ids[r, c], k] = ids[rr, cc]
                rows.append(ids[r, c])
                cols.append(ids[rr, cc])
                wts.append(math.hypot(dr, dc) / res)
        dist = shortest_path(coo_matrix((wts, (rows, cols)), shape=(n, n)), directed=True)
        if not np.isfinite(dist).all():
            raise ValueError("maze has free cells that cannot reach each other")
        self.ids = torch.as_tensor(ids, device=device)
        self.nbr = torch.as_tensor(nbr, device=device)
        self.dist = torch.as_tensor(dist, dtype=torch.float32, device=device)
        rc = np.argwhere(free)  # node id order == row-major order of free sub-cells
        self.centers = torch.as_tensor(np.stack([(rc[:, 1] + 0.5) / res, (rc[:, 0] + 0.5) / res], -1),
                                       dtype=torch.float32, device=device)

    def node(self, pos: torch.Tensor) -> torch.Tensor:
        fine = (pos * self.res).floor().long()
        return self.ids[fine[:, 1].clamp(0, self.ids.shape[0] - 1), fine[:, 0].clamp(0, self.ids.shape[1] - 1)]

    def act(self, pos: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Actions in [-1, 1]² that follow the shortest path toward each goal."""
        here, there = self.node(pos), self.node(goal)
        cand = self.nbr[here]  # [N, 8]
        d = self.dist[cand, there[:, None]]
        best = cand.gather(1, d.argmin(dim=1, keepdim=True)).squeeze(1)
        target = torch.where((here == there)[:, None], goal, self.centers[best])
        delta = (target - pos) / self.env.step_size
        scale = delta.abs().amax(dim=-1, keepdim=True).clamp_min(1.0)
        return delta / scale  # same direction, largest component within [-1, 1]

    def geodesic(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Approximate maze distance between positions (sub-cell resolution)."""
        return self.dist[self.node(a), self.node(b)]
