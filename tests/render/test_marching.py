"""Ray marching and pruning against brute force, on both marching plans (exact counts, padded slots)."""

from __future__ import annotations

import math

import pytest
import torch

from neuralfields.render import marching
from neuralfields.render.marching import MarchPlan, march_counted, prune_samples, ray_aabb, step_sequence
from neuralfields.render.occupancy import OccupancyGrid


def brute_force(grid, origins, dirs, near, step, shift, edges=None):
    """Every ray's occupied intervals, one ray and one step at a time."""
    t_in, t_out = ray_aabb(origins, dirs, grid.aabb)
    rows = []
    for r in range(len(origins)):
        lo, hi = max(float(t_in[r]), near), float(t_out[r])
        for k in range(4096):
            if edges is None:
                t0, w = near + (k + float(shift[r])) * step, step
            else:
                if k + 1 >= len(edges):
                    break
                w = float(edges[k + 1] - edges[k])
                t0 = float(edges[k]) + float(shift[r]) * w
            mid = t0 + w / 2
            if mid >= hi:
                break
            if mid > lo and grid.lookup((origins[r] + dirs[r] * mid)[None])[0]:
                rows.append((r, t0, t0 + w))
    return rows


@pytest.fixture
def scene():
    torch.manual_seed(0)
    grid = OccupancyGrid(torch.tensor([[-1.0] * 3, [1.0] * 3]), 16, 1)
    grid.binary.copy_(torch.rand_like(grid.density) > 0.8)
    origins = torch.randn(40, 3) * 2.5
    dirs = torch.nn.functional.normalize(-origins + torch.randn(40, 3) * 0.4, dim=-1)
    return grid, origins, dirs


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("cone", [False, True])
def test_march_matches_brute_force(scene, monkeypatch, dense, cone):
    grid, origins, dirs = scene
    monkeypatch.setitem(marching.MARCH_PLANS, "cpu", MarchPlan(dense=dense, chunk_candidates=2048))  # several chunks
    step = 0.02
    edges = step_sequence(0.1, 1e10, step, 1 / 64, step * 8) if cone else None
    torch.manual_seed(3)
    samples, n_first = march_counted(grid, origins, dirs, 0.1, step, jitter=True, edges=edges, prefix=5)
    torch.manual_seed(3)
    shift = torch.rand(len(origins))
    expected = brute_force(grid, origins, dirs, 0.1, step, shift, edges)
    assert len(samples) == len(expected) > 100
    assert samples.ray_indices.tolist() == [r for r, _, _ in expected]
    torch.testing.assert_close(samples.t_starts, torch.tensor([a for _, a, _ in expected]), atol=2e-5, rtol=0)
    torch.testing.assert_close(samples.t_ends, torch.tensor([b for _, _, b in expected]), atol=2e-5, rtol=0)
    counts = torch.bincount(samples.ray_indices, minlength=len(origins))
    assert n_first == int(counts.clamp(max=5).sum())


def test_pruning_keeps_what_one_full_pass_keeps(scene):
    """Two phases with early stop keep exactly the samples a pass over every sample keeps."""
    grid, origins, dirs = scene
    grid.binary.fill_(True)
    samples, n_first = march_counted(grid, origins, dirs, 0.0, 0.01, prefix=8)

    def sigma_fn(part):
        x = part.midpoints(origins, dirs)
        return 40.0 * (x.norm(dim=-1) < 0.6).float() + 0.5

    pruned = prune_samples(samples, sigma_fn, early_stop_eps=1e-3, first_phase=8, n_first=n_first)
    sigma = sigma_fn(samples)
    from neuralfields.render.compositing import render_weights

    _, transmittance, _ = render_weights(samples.t_starts, samples.t_ends, sigma, samples.ray_indices)
    keep = transmittance > 1e-3
    assert 0 < len(pruned) < 0.8 * len(samples)
    assert torch.equal(pruned.ray_indices, samples.ray_indices[keep])
    assert torch.equal(pruned.t_starts, samples.t_starts[keep])
    assert math.isclose(float(pruned.t_ends.sum()), float(samples.t_ends[keep].sum()), rel_tol=1e-6)
