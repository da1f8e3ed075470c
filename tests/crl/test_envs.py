"""The point-mass mazes: dynamics and walls on hand-made cases, reachability, vectorisation."""
import pytest
import torch

from pipeline.studies.crl.envs import EDGE, MAZES, PointMaze, parse_layout
from pipeline.studies.crl.oracle import MazeOracle

ROOM = ("#####", "#S..#", "#.#.#", "#..G#", "#####")  # a 3×3 room with a pillar in the middle


def one(maze=ROOM, **kw) -> PointMaze:
    return PointMaze(maze, 1, **kw)


def moved(env, x, y, ax, ay):
    return env.move(torch.tensor([[x, y]]), torch.tensor([[ax, ay]]))[0].tolist()


def test_free_move_is_step_times_action():
    env = one(step_size=0.2)
    assert moved(env, 1.5, 1.5, 1.0, -0.5) == pytest.approx([1.7, 1.4])
    assert moved(env, 1.5, 1.5, 3.0, 0.0) == pytest.approx([1.7, 1.5]), "actions are clipped to [-1, 1]"


@pytest.mark.parametrize("start, action, expect", [
    ((1.1, 1.5), (-1.0, 0.0), (1.0, 1.5)),          # left into the outer wall: stops on its face
    ((3.9, 1.5), (1.0, 0.0), (4.0 - EDGE, 1.5)),    # right into the outer wall
    ((1.5, 1.1), (0.0, -1.0), (1.5, 1.0)),          # up into the outer wall
    ((1.5, 1.95), (1.0, 0.0), (1.7, 1.95)),         # along the pillar's top face: free
    ((1.9, 2.5), (1.0, 0.0), (2.0 - EDGE, 2.5)),    # right into the pillar
    ((2.5, 1.9), (0.0, 1.0), (2.5, 2.0 - EDGE)),    # down into the pillar
    ((3.1, 2.5), (-1.0, 0.0), (3.0, 2.5)),          # left into the pillar
    ((1.9, 2.5), (1.0, 0.5), (2.0 - EDGE, 2.6)),    # diagonal into the pillar: slides along it
])
def test_walls_stop_and_slide(start, action, expect):
    assert moved(one(), *start, *action) == pytest.approx(list(expect), abs=1e-5)


def test_corner_cannot_be_cut():
    # From the top-left cell, heading diagonally at the pillar's corner: the point may enter a
    # free neighbour cell but never the pillar cell (2, 2).
    env = one()
    pos = torch.tensor([[1.95, 1.95]])
    for _ in range(20):
        pos = env.move(pos, torch.tensor([[1.0, 1.0]]))
        assert not env.is_wall(pos).any()
    assert not (2 <= pos[0, 0] < 3 and 2 <= pos[0, 1] < 3)


def test_pushing_into_a_wall_never_tunnels():
    env = one()
    pos = torch.tensor([[1.5, 2.5]])
    for _ in range(50):
        pos = env.move(pos, torch.tensor([[1.0, 0.0]]))
    assert pos[0, 0] < 2.0 and pos[0, 1] == pytest.approx(2.5)


@pytest.mark.parametrize("maze", sorted(MAZES))
def test_random_actions_never_enter_walls(maze):
    env = PointMaze(maze, 2048)
    g = torch.Generator().manual_seed(0)
    env.reset(g)
    for _ in range(150):
        before = env.pos.clone()
        env.step(torch.rand(2048, 2, generator=g) * 2 - 1, g, autoreset=False)
        assert not env.is_wall(env.pos).any()
        assert ((env.pos - before).abs() <= env.step_size + 1e-6).all()


def test_vectorised_and_single_envs_agree():
    n = 16
    g = torch.Generator().manual_seed(1)
    batch = PointMaze("umaze", n)
    start, goal = batch.sample_pairs(n, g)
    batch.reset(start=start, goal=goal)
    singles = [PointMaze("umaze", 1) for _ in range(n)]
    for i, e in enumerate(singles):
        e.reset(start=start[i:i + 1], goal=goal[i:i + 1])
    for _ in range(60):
        a = torch.rand(n, 2, generator=g) * 2 - 1
        out = batch.step(a, autoreset=False)
        for i, e in enumerate(singles):
            o = e.step(a[i:i + 1], autoreset=False)
            assert torch.equal(o.obs[0], out.obs[i])
            assert o.at_goal[0] == out.at_goal[i]


def test_episode_end_resets_with_new_trajectory_ids():
    env = PointMaze("umaze", 4, episode_length=5)
    g = torch.Generator().manual_seed(0)
    env.reset(g)
    ids = env.traj_id.clone()
    for t in range(5):
        out = env.step(torch.zeros(4, 2), g)
        assert bool(out.done.all()) == (t == 4)
    assert (env.t == 0).all()
    assert set(env.traj_id.tolist()).isdisjoint(ids.tolist())


def test_at_goal_uses_the_radius():
    env = one(goal_radius=0.5)
    env.reset(start=torch.tensor([[1.5, 1.5]]), goal=torch.tensor([[1.5, 1.95]]))
    assert env.step(torch.zeros(1, 2)).at_goal.item() == 1.0
    env.reset(start=torch.tensor([[1.5, 1.5]]), goal=torch.tensor([[3.5, 3.5]]))
    assert env.step(torch.zeros(1, 2)).at_goal.item() == 0.0


@pytest.mark.parametrize("maze", sorted(MAZES))
def test_every_goal_is_reachable_by_the_oracle(maze):
    g = torch.Generator().manual_seed(2)
    for hard in (False, True):
        env = PointMaze(maze, 512)
        oracle = MazeOracle(env)
        env.reset(g, hard=hard)
        touched = torch.zeros(512, dtype=torch.bool)
        for _ in range(env.episode_length):
            touched |= env.step(oracle.act(env.pos, env.goal), autoreset=False).at_goal.bool()
        assert touched.all(), f"{maze}: the oracle missed {int((~touched).sum())} goals (hard={hard})"


@pytest.mark.parametrize("maze", sorted(MAZES))
def test_hard_pair_is_the_farthest_pair(maze):
    env = PointMaze(maze, 1)
    oracle = MazeOracle(env)
    centres = lambda cell: torch.tensor([PointMaze.cell_center(cell)])  # noqa: E731
    hard = oracle.geodesic(centres(env.hard_start_cell), centres(env.hard_goal_cell)).item()
    cells = [tuple(c) for c in env.free_cells.tolist()]
    farthest = max(oracle.geodesic(centres(a), centres(b)).item() for a in cells for b in cells)
    assert hard == pytest.approx(farthest, rel=0.05)


@pytest.mark.parametrize("layout, msg", [
    (("####", "#SX#", "####"), "unknown characters"),
    (("#...", "#SG#", "####"), "enclosed"),
    (("####", "#..#", "####"), "exactly one 'S'"),
])
def test_bad_layouts_are_rejected(layout, msg):
    with pytest.raises(ValueError, match=msg):
        parse_layout(layout)


def test_step_size_must_stay_below_a_cell():
    with pytest.raises(ValueError, match="step_size"):
        PointMaze("umaze", 1, step_size=1.0)
