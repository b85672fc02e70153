"""Occupancy-grid sampler: march through occupied cells, drop hidden samples, own the grid's updates.

Like nerfacc's estimator, the sampler owns its update schedule (``every`` steps, full refreshes
during ``warmup`` steps, EMA decay, threshold) and reaches the field through one density
closure that also handles time: for a dynamic scene a cell counts as occupied if matter passes
through it at any training time, so each update queries the density at random training times.

With several ranks (:mod:`neuralfields.distributed`) rank 0 updates the grid and broadcasts it,
so every rank marches the same cells: the update draws random cells and points, and ranks draw
from different random streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ... import distributed
from ...config import RenderConfig
from ...fields.base import Field
from ..evaluate import Space, density_at, query_density
from ..marching import PackedSamples, march, prune_samples, step_sequence
from ..occupancy import OccupancyGrid, cascade_levels
from ..rays import RayBatch
from . import SAMPLERS


@dataclass
class GridUpdate:
    """When and how the grid re-reads the field's density."""

    every: int = 16  # steps between updates
    warmup: int = 256  # until this step every cell is refreshed at each update
    ema_decay: float = 0.95
    threshold: float = 0.01  # occupied when density x reference step exceeds this (or the mean)


@SAMPLERS.register("occupancy")
class OccupancySampler(nn.Module):
    """Samples in the occupied cells of a (cascaded) occupancy grid over the scene box.

    Args:
        aabb: ``[2, 3]`` scene box; aabb_scale: cascades cover ``aabb_scale`` times the inner box.
        space: world -> field coordinates (the field's density is queried through it).
        cfg: step size, cone angle, pruning thresholds; near: rays start this far from the camera.
        schedule: the grid's update cadence; times: ``[T]`` training times of a dynamic scene.
    """

    def __init__(self, aabb: Tensor, space: Space, cfg: RenderConfig | None = None, near: float = 0.0,
                 aabb_scale: float = 1.0, schedule: GridUpdate | None = None, times: Tensor | None = None):
        super().__init__()
        self.cfg, self.near, self.space = cfg or RenderConfig(), near, space
        self.schedule = schedule or GridUpdate()
        # Unbounded scenes: one grid over the contracted field space [-1, 1]^3, rays to ``far``.
        self.unbounded = bool(getattr(space, "unbounded", False))
        if self.unbounded:
            cube = torch.tensor([[-1.0] * 3, [1.0] * 3])
            self.grid = OccupancyGrid(cube, self.cfg.grid_resolution, 1)
            inner = space.aabb
        else:
            self.grid = OccupancyGrid(aabb, self.cfg.grid_resolution, cascade_levels(aabb_scale))
            inner = self.grid.inner_aabb
        self.register_buffer("times", None if times is None else torch.as_tensor(times, dtype=torch.float32),
                             persistent=False)
        self.diagonal = diagonal = float((inner[1] - inner[0]).norm())
        self.far = self.cfg.far * float((inner[1] - inner[0]).mean()) / 2 if self.unbounded else None
        # Steps must grow with distance to reach ``far``: the cone angle of instant-ngp's large scenes.
        self.cone_angle = self.cfg.cone_angle or (1 / 256 if self.unbounded else 0.0)
        self.step_size = self.cfg.render_step_size or diagonal / self.cfg.samples_per_diagonal
        # The grid thresholds density x a fixed reference step (Instant-NGP's diagonal / 1024),
        # so what counts as empty does not change when a preset renders with coarser steps.
        self.occupancy_step = diagonal / 1024

    @property
    def initial_samples_per_ray(self) -> int:
        """Samples a ray gets before the grid has culled anything (about half the box's diagonal,
        or every step from ``near`` to ``far`` in unbounded space)."""
        if self.unbounded:
            return len(step_sequence(self.near, self.far, self.step_size, self.cone_angle)) - 1
        return max(1, int(0.5 * self.diagonal / self.step_size))

    @property
    def world_grid(self) -> OccupancyGrid | None:
        """The grid when its cells are world-space boxes (exporters crop and cull with it), else None."""
        return None if self.unbounded else self.grid

    def may_sample(self, u: Tensor, cell_length: Tensor) -> Tensor:
        """``[N]`` bool: does this sampler ever place samples at field points ``u [N, 3]`` (bakes
        keep density only there); ``cell_length [N]`` (world units) is unused: cells are cells."""
        return self.grid.lookup(u if self.unbounded else self.space.inverse(u))

    def sample(self, field: Field, rays: RayBatch, training: bool = False, prune: bool = True) -> PackedSamples:
        """Packed samples in occupied space; with ``prune`` a no-grad density pass drops hidden ones."""
        samples = march(self.grid, rays.origins, rays.dirs, self.near, self.step_size, self.cone_angle, training,
                        far=self.far, to_grid=self.space if self.unbounded else None)
        if prune and (self.cfg.early_stop_eps > 0 or self.cfg.alpha_threshold > 0):
            samples = prune_samples(samples, lambda part: query_density(field, self.space, part, rays),
                                    self.cfg.early_stop_eps, self.cfg.alpha_threshold)
        return samples

    def density_fn(self, field: Field):
        """``grid points [N, 3] -> sigma [N]`` at random training times (dynamic) or none (static).

        Grid points are world points, or field coordinates when the grid covers contracted space."""
        times = self.times
        space = (lambda u: u) if self.unbounded else self.space

        def fn(x: Tensor) -> Tensor:
            t = None if times is None else times[torch.randint(0, len(times), (x.shape[0],), device=x.device)]
            return density_at(field, space, x, t)

        return fn

    def update(self, step: int, field: Field) -> None:
        """Refresh the grid when the schedule says so (call before every training step, on every rank)."""
        s = self.schedule
        if step % s.every != 0:
            return
        if distributed.is_main():
            self.grid.update(self.density_fn(field), self.occupancy_step, warmup=step < s.warmup,
                             ema_decay=s.ema_decay, threshold=s.threshold)
        g = self.grid
        distributed.broadcast([g.density, g.binary, g.updates])  # no-op for a single process
