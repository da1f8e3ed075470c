"""Goal-conditioned point-mass navigation in mazes, vectorised in torch over thousands of envs.

The paper's tasks (Brax ant/humanoid mazes) need a GPU physics engine; this is the cheap
stand-in that runs anywhere: a velocity-controlled point in a grid maze. Cell (r, c) covers
x ∈ [c, c+1), y ∈ [r, r+1); the state is the position (x, y), which is also the achieved goal.
An action a ∈ [-1, 1]² moves the point by `step_size · a`, one axis at a time (x, then y): a
move that would enter a wall cell stops at the wall's face, so the point slides along walls and
can never enter or tunnel through one (a step is shorter than a cell). Episodes have a fixed
length and never terminate early (as in the paper's envs); `time at goal` is the fraction of an
episode's steps that end within `goal_radius` of the goal.

Layouts: `S` marks the hard pair's start cell, `G` its goal cell, `#` a wall, `.` a free cell.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.runtime import place

MAZES: dict[str, tuple[str, ...]] = {
    # An open room: no walls inside, the hard pair is two opposite corners.
    "open": (
        "#######",
        "#S....#",
        "#.....#",
        "#....G#",
        "#######",
    ),
    # D4RL / Brax U-maze: the hard pair is one end of the U to the other.
    "umaze": (
        "#####",
        "#S..#",
        "###.#",
        "#G..#",
        "#####",
    ),
    # D4RL / Brax "big maze"; the hard pair is the two ends farthest apart along the corridors.
    "bigmaze": (
        "########",
        "#S.##..#",
        "#..#...#",
        "##...###",
        "#..#...#",
        "#.#..#.#",
        "#...#G.#",
        "########",
    ),
}

EDGE = 1e-4  # how far from a wall face a blocked point stops (cells)
CELL_MARGIN = 1e-3  # sampled positions stay this far inside their cell


def parse_layout(layout: tuple[str, ...] | list[str]) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """Walls [H, W] (bool) and the (row, col) of the `S` and `G` cells; checks the layout."""
    rows = [str(r) for r in layout]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError(f"maze layout must be non-empty rows of equal length, got {rows!r}")
    bad = {ch for r in rows for ch in r} - set("#.SG")
    if bad:
        raise ValueError(f"maze layout has unknown characters {sorted(bad)} (allowed: # . S G)")
    walls = torch.tensor([[ch == "#" for ch in r] for r in rows], dtype=torch.bool)
    h, w = walls.shape
    if not (walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()):
        raise ValueError("maze layout must be enclosed by walls (#) on every side")
    marks = {}
    for ch in "SG":
        found = [(i, j) for i, r in enumerate(rows) for j, c in enumerate(r) if c == ch]
        if len(found) != 1:
            raise ValueError(f"maze layout must mark exactly one {ch!r} cell, found {len(found)}")
        marks[ch] = found[0]
    return walls, marks["S"], marks["G"]


def resolve_layout(maze: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(maze, str):
        if maze not in MAZES:
            raise ValueError(f"unknown maze {maze!r}; known mazes: {sorted(MAZES)} (or give a layout as a list of rows)")
        return MAZES[maze]
    return tuple(maze)


@dataclass
class StepOut:
    """What one vectorised step returns. `at_goal` and `done` describe the step just taken;
    `obs`/`goal` are already those of the next episode for envs that were reset (`done`)."""

    obs: torch.Tensor
    goal: torch.Tensor
    at_goal: torch.Tensor
    done: torch.Tensor


class PointMaze:
    """A batch of `num_envs` point-mass mazes stepping in lockstep on one device."""

    obs_dim = 2
    action_dim = 2
    goal_dim = 2
    goal_indices = (0, 1)  # the achieved goal is obs[..., 0:2]

    def __init__(self, maze: str | list[str], num_envs: int, *, episode_length: int = 100,
                 step_size: float = 0.2, goal_radius: float = 0.5, device: str | torch.device = "cpu") -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if not 0 < step_size < 1:
            raise ValueError(f"step_size must be in (0, 1) cells so that a step cannot cross a wall, got {step_size}")
        if episode_length < 2:
            raise ValueError(f"episode_length must be >= 2, got {episode_length}")
        self.layout = resolve_layout(maze)
        self.device = torch.device(device)
        walls, start, goal = parse_layout(self.layout)
        self.walls = place(walls, self.device)
        self.height, self.width = walls.shape
        self.free_cells = place((~walls).nonzero(), self.device)  # [F, 2] (row, col)
        self.hard_start_cell, self.hard_goal_cell = start, goal
        self.num_envs, self.episode_length = num_envs, episode_length
        self.step_size, self.goal_radius = float(step_size), float(goal_radius)
        n = num_envs
        self.pos = torch.zeros(n, 2, device=self.device)
        self.goal = torch.zeros(n, 2, device=self.device)
        self.t = torch.zeros(n, dtype=torch.long, device=self.device)
        self.traj_id = torch.arange(n, device=self.device)
        self.next_traj_id = n
        self.hard = False

    # -- geometry ----------------------------------------------------------------------
    def is_wall(self, pos: torch.Tensor) -> torch.Tensor:
        col = pos[..., 0].floor().long().clamp(0, self.width - 1)
        row = pos[..., 1].floor().long().clamp(0, self.height - 1)
        return self.walls[row, col]

    def _move_axis(self, pos: torch.Tensor, delta: torch.Tensor, axis: int) -> torch.Tensor:
        new = pos.clone()
        new[:, axis] = pos[:, axis] + delta
        blocked = self.is_wall(new)
        # The wall cell lies beyond the face floor(new) (moving +) or floor(new)+1 (moving -).
        face = new[:, axis].floor()
        stop = torch.where(delta > 0, face - EDGE, face + 1.0)
        new[:, axis] = torch.where(blocked, stop, new[:, axis])
        return new

    def move(self, pos: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Positions after applying `action` (clipped to [-1, 1]) with wall collisions."""
        delta = self.step_size * action.clamp(-1.0, 1.0)
        pos = self._move_axis(pos, delta[:, 0], 0)
        return self._move_axis(pos, delta[:, 1], 1)

    def cell_positions(self, cells: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """A uniform random position inside each (row, col) cell."""
        u = torch.rand(cells.shape[0], 2, generator=generator, device=self.device)
        u = CELL_MARGIN + (1 - 2 * CELL_MARGIN) * u
        return torch.stack([cells[:, 1] + u[:, 0], cells[:, 0] + u[:, 1]], dim=-1).float()

    @staticmethod
    def cell_center(cell: tuple[int, int]) -> tuple[float, float]:
        return (cell[1] + 0.5, cell[0] + 0.5)

    def sample_pairs(self, n: int, generator: torch.Generator | None, hard: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and goal positions: uniform over free cells, or the hard pair (start anywhere in
        the `S` cell, goal at the centre of the `G` cell)."""
        if hard:
            start_cells = torch.tensor([self.hard_start_cell], device=self.device).expand(n, 2)
            start = self.cell_positions(start_cells, generator)
            goal = torch.tensor([self.cell_center(self.hard_goal_cell)], device=self.device).expand(n, 2).clone()
            return start, goal
        idx = torch.randint(0, self.free_cells.shape[0], (2, n), generator=generator, device=self.device)
        return self.cell_positions(self.free_cells[idx[0]], generator), self.cell_positions(self.free_cells[idx[1]], generator)

    # -- the env interface ---------------------------------------------------------------
    def achieved_goal(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[..., list(self.goal_indices)]

    def obs(self) -> torch.Tensor:
        return self.pos.clone()

    def reset(self, generator: torch.Generator | None = None, hard: bool = False,
              start: torch.Tensor | None = None, goal: torch.Tensor | None = None) -> torch.Tensor:
        """Reset every env: random pairs, the hard pair, or given start/goal positions."""
        self.hard = hard
        if start is None or goal is None:
            start, goal = self.sample_pairs(self.num_envs, generator, hard)
        if start.shape != (self.num_envs, 2) or goal.shape != (self.num_envs, 2):
            raise ValueError(f"start and goal must have shape ({self.num_envs}, 2)")
        if self.is_wall(start).any() or self.is_wall(goal).any():
            raise ValueError("a start or goal position lies inside a wall")
        self.pos, self.goal = (place(v, self.device).float().clone() for v in (start, goal))
        self.t.zero_()
        self.traj_id = torch.arange(self.next_traj_id, self.next_traj_id + self.num_envs, device=self.device)
        self.next_traj_id += self.num_envs
        return self.obs()

    def step(self, action: torch.Tensor, generator: torch.Generator | None = None, autoreset: bool = True) -> StepOut:
        if action.shape != (self.num_envs, self.action_dim):
            raise ValueError(f"action must have shape ({self.num_envs}, {self.action_dim}), got {tuple(action.shape)}")
        self.pos = self.move(self.pos, place(action, self.device))
        self.t += 1
        at_goal = (self.pos - self.goal).norm(dim=-1) < self.goal_radius
        done = self.t >= self.episode_length
        if autoreset and bool(done.any()):
            self._reset_where(done, generator)
        return StepOut(self.obs(), self.goal.clone(), at_goal.float(), done)

    def _reset_where(self, mask: torch.Tensor, generator: torch.Generator | None) -> None:
        start, goal = self.sample_pairs(self.num_envs, generator, self.hard)
        m = mask[:, None]
        self.pos = torch.where(m, start, self.pos)
        self.goal = torch.where(m, goal, self.goal)
        self.t = torch.where(mask, torch.zeros_like(self.t), self.t)
        k = int(mask.sum())
        new_ids = torch.arange(self.next_traj_id, self.next_traj_id + k, device=self.device)
        self.traj_id = self.traj_id.clone()
        self.traj_id[mask] = new_ids
        self.next_traj_id += k

    # -- checkpointing -------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"pos": self.pos, "goal": self.goal, "t": self.t, "traj_id": self.traj_id,
                "next_traj_id": self.next_traj_id, "hard": self.hard}

    def load_state_dict(self, state: dict) -> None:
        self.pos, self.goal, self.t, self.traj_id = place([state[k] for k in ("pos", "goal", "t", "traj_id")], self.device)
        self.next_traj_id, self.hard = int(state["next_traj_id"]), bool(state["hard"])


def make_env(env_cfg, num_envs: int, device: str | torch.device = "cpu"):
    """The env a config asks for: a torch `PointMaze`, or a Gymnasium goal env (lazy import)."""
    if env_cfg.backend == "maze":
        return PointMaze(env_cfg.maze, num_envs, episode_length=env_cfg.episode_length,
                         step_size=env_cfg.step_size, goal_radius=env_cfg.goal_radius, device=device)
    from pipeline.studies.crl.gym_adapter import make_gym_env

    return make_gym_env(env_cfg.gym_id, num_envs, episode_length=env_cfg.episode_length,
                        goal_radius=env_cfg.goal_radius, kwargs=env_cfg.gym_kwargs,
                        hard_pair=env_cfg.hard_pair, dims=env_cfg.dims, device=device)
