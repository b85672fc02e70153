"""Occupancy-grid sampler: march through occupied cells, drop hidden samples, own the grid's updates.

Like nerfacc's estimator, the sampler owns its update schedule (``every`` steps, full refreshes
during ``warmup`` steps, EMA decay, threshold) and reaches the scene only through the density
function it is handed. For a dynamic scene a cell counts as occupied if matter passes through it
at any training time, so each update queries the density at random training times.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..marching import FIRST_PHASE, PackedSamples, march_counted, prune_samples, step_sequence
from ..occupancy import OccupancyGrid, cascade_levels
from ..rays import RayBatch
from . import SAMPLERS, DensityFn


@dataclass
class GridUpdate:
    """When and how the grid re-reads the scene's density."""

    every: int = 16  # steps between updates
    warmup: int = 256  # until this step every cell is refreshed at each update
    ema_decay: float = 0.95
    threshold: float = 0.01  # occupied when density x reference step exceeds this (or the mean)


@dataclass
class OccupancySettings:
    """The render settings the occupancy sampler reads (names as in the run's render config)."""

    grid_resolution: int = 128
    render_step_size: float | None = None  # None: inner box diagonal / samples_per_diagonal
    samples_per_diagonal: int = 512
    cone_angle: float = 0.0  # 0: instant-ngp's 1/256 in unbounded space, uniform steps in a box
    alpha_threshold: float = 0.0
    early_stop_eps: float = 1e-4
    far: float = 1000.0  # unbounded scenes: rays end this many inner-box half sizes away


@SAMPLERS.register("occupancy")
class OccupancySampler(nn.Module):
    """Samples in the occupied cells of a (cascaded) occupancy grid over the scene box.

    Args:
        aabb: ``[2, 3]`` scene box; aabb_scale: cascades cover ``aabb_scale`` times the inner box.
        space: world -> field coordinates (an unbounded space gets one grid over its field cube).
        settings: step size, cone angle, pruning thresholds; near: rays start this far from the camera.
        schedule: the grid's update cadence; times: ``[T]`` training times of a dynamic scene.
    """

    Settings = OccupancySettings

    def __init__(self, aabb: Tensor, space: nn.Module, settings: OccupancySettings | None = None, near: float = 0.0,
                 aabb_scale: float = 1.0, schedule: GridUpdate | None = None, times: Tensor | None = None):
        super().__init__()
        self.settings, self.near, self.space = settings or OccupancySettings(), near, space
        c = self.settings
        self.schedule = schedule or GridUpdate()
        # Unbounded scenes: one grid over the contracted field space [-1, 1]^3, rays to ``far``.
        self.unbounded = bool(space.unbounded)
        if self.unbounded:
            cube = torch.tensor([[-1.0] * 3, [1.0] * 3])
            self.grid = OccupancyGrid(cube, c.grid_resolution, 1)
            inner = space.aabb
        else:
            self.grid = OccupancyGrid(aabb, c.grid_resolution, cascade_levels(aabb_scale))
            inner = self.grid.inner_aabb
        self.register_buffer("times", None if times is None else torch.as_tensor(times, dtype=torch.float32),
                             persistent=False)
        self.diagonal = diagonal = float((inner[1] - inner[0]).norm())
        self.far = c.far * float((inner[1] - inner[0]).mean()) / 2 if self.unbounded else None
        # Steps must grow with distance to reach ``far``: the cone angle of instant-ngp's large scenes.
        self.cone_angle = c.cone_angle or (1 / 256 if self.unbounded else 0.0)
        self.step_size = c.render_step_size or diagonal / c.samples_per_diagonal
        # Steps that grow with distance come from one table of edges made once on the host.
        edges = None
        if self.cone_angle > 0:
            max_step = 1e10 if self.unbounded else self.step_size * 64
            edges = step_sequence(near, self.far if self.unbounded else 1e10, self.step_size, self.cone_angle, max_step)
        self.register_buffer("edges", edges, persistent=False)
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

    def sample(self, rays: RayBatch, density_fn: DensityFn, training: bool = False,
               prune: bool = True) -> tuple[PackedSamples, dict]:
        """Packed samples in occupied space; with ``prune`` a no-grad density pass drops hidden ones."""
        c = self.settings
        pruning = prune and (c.early_stop_eps > 0 or c.alpha_threshold > 0)
        samples, n_first = march_counted(self.grid, rays.origins, rays.dirs, self.near, self.step_size, training,
                                         self.edges, self.far, self.space if self.unbounded else None,
                                         prefix=FIRST_PHASE if pruning else 0)
        if pruning:
            def sigma_fn(part: PackedSamples) -> Tensor:
                return density_fn(part.midpoints(rays.origins, rays.dirs), rays.sample_times(part.ray_indices))

            samples = prune_samples(samples, sigma_fn, c.early_stop_eps, c.alpha_threshold, FIRST_PHASE, n_first)
        return samples, {}

    def grid_density(self, density_fn: DensityFn):
        """``grid points [N, 3] -> sigma [N]`` at random training times (dynamic) or none (static).

        Grid points are world points, or field coordinates when the grid covers contracted space."""
        times = self.times
        to_world = self.space.inverse if self.unbounded else (lambda u: u)

        def fn(x: Tensor) -> Tensor:
            t = None if times is None else times[torch.randint(0, len(times), (x.shape[0],), device=x.device)][:, None]
            return density_fn(to_world(x), t)

        return fn

    def update(self, step: int, density_fn: DensityFn) -> bool:
        """Refresh the grid when the schedule says so (call before every training step); True when it did."""
        s = self.schedule
        if step % s.every != 0:
            return False
        self.grid.update(self.grid_density(density_fn), self.occupancy_step, warmup=step < s.warmup,
                         ema_decay=s.ema_decay, threshold=s.threshold)
        return True

    def losses(self, aux: dict, weights: Tensor) -> dict[str, Tensor]:
        return {}

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]:
        return []
