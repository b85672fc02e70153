import torch

from neuralfields.data.demo import DemoScene
from neuralfields.render import OccupancyGrid, march
from neuralfields.render.marching import ray_aabb


def analytic_density(scene: DemoScene):
    # Dense inside the solid, empty outside (a soft step on the exact SDF).
    return lambda x: 100.0 * torch.sigmoid(-scene.sdf(x) / 0.01)


def test_occupancy_grid_culls_empty_space_on_the_demo_scene():
    scene = DemoScene()
    grid = OccupancyGrid(torch.tensor([[-1.5] * 3, [1.5] * 3]), resolution=48)
    assert grid.occupancy_fraction() == 1.0  # warm-up: everything may hold matter
    for _ in range(3):
        grid.update(analytic_density(scene), step_size=0.01, warmup=True)
    frac = grid.occupancy_fraction()
    assert 0.005 < frac < 0.15, frac
    # Every surface point must stay inside an occupied cell (nothing visible is culled).
    surface = scene.sample_surface(2000)
    assert grid.lookup(surface).float().mean() > 0.99
    # Points far from the geometry are culled.
    far = torch.tensor([[1.3, 1.3, 1.3], [-1.4, 1.2, 0.9], [0.0, 0.0, 1.2]])
    assert not grid.lookup(far).any()


def test_marching_skips_empty_space_and_respects_the_box():
    scene = DemoScene()
    grid = OccupancyGrid(torch.tensor([[-1.5] * 3, [1.5] * 3]), resolution=48)
    grid.update(analytic_density(scene), step_size=0.01, warmup=True)
    origins = torch.tensor([[0.0, -4.0, 0.0], [0.0, -4.0, 3.0], [0.0, -4.0, -0.3]])
    dirs = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    all_cells = OccupancyGrid(grid.aabb, resolution=48)
    dense = march(all_cells, origins, dirs, near=0.0, step_size=0.01)
    culled = march(grid, origins, dirs, near=0.0, step_size=0.01)
    # Ray 1 points away from the box: no samples either way.
    assert (dense.ray_indices == 1).sum() == 0 and (culled.ray_indices == 1).sum() == 0
    assert len(culled) < 0.5 * len(dense)
    # Ray 2 passes through the large sphere: its samples concentrate near the surface.
    t_in, t_out = ray_aabb(origins, dirs, grid.aabb)
    r2 = culled.ray_indices == 2
    assert r2.sum() > 0
    assert (culled.t_starts[r2] >= t_in[2] - 1e-5).all() and (culled.t_ends[r2] <= t_out[2] + 0.011).all()
    # Packed order: sorted by ray then distance.
    assert torch.all(culled.ray_indices[1:] >= culled.ray_indices[:-1])


def test_cascaded_grid_looks_up_the_finest_level():
    grid = OccupancyGrid(torch.tensor([[-4.0] * 3, [4.0] * 3]), resolution=16, levels=3)
    assert torch.allclose(grid.inner_aabb, torch.tensor([[-1.0] * 3, [1.0] * 3]))
    # Only a cell near the centre is dense: far cells at coarse levels are empty.
    grid.update(lambda x: 50.0 * (x.norm(dim=-1) < 0.3).float(), step_size=0.05, warmup=True)
    assert grid.lookup(torch.zeros(1, 3)).item()
    assert not grid.lookup(torch.tensor([[3.0, 3.0, 3.0], [1.5, 0.0, 0.0]])).any()
    assert not grid.lookup(torch.tensor([[5.0, 0.0, 0.0]])).any()  # outside the scene box
