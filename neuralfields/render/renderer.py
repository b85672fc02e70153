"""Rays -> rendered buffers for any field, through the occupancy grid.

The renderer only calls the field protocol (``density`` and ``color``); it normalises world
points so that the scene box maps to ``[-1, 1]^3`` before the field sees them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cameras import Cameras
from ..config import RenderConfig
from ..fields.base import Field
from .compositing import composite
from .marching import PackedSamples, march, prune_samples
from .occupancy import OccupancyGrid


class Renderer:
    """Renders rays of a scene box with a :class:`Field`.

    Args:
        grid: occupancy grid over the scene box (its ``aabb`` defines the normalisation).
        cfg: step size, cone angle, pruning thresholds and chunking.
        near: rays start at least this far from the camera.
    """

    def __init__(self, grid: OccupancyGrid, cfg: RenderConfig | None = None, near: float = 0.0):
        self.grid, self.cfg, self.near = grid, cfg or RenderConfig(), near
        aabb = grid.aabb
        self.centre, self.half = (aabb[0] + aabb[1]) / 2, (aabb[1] - aabb[0]) / 2
        inner = grid.inner_aabb
        self.step_size = self.cfg.render_step_size or float((inner[1] - inner[0]).norm()) / self.cfg.samples_per_diagonal

    def normalize(self, x: Tensor) -> Tensor:
        """World points ``[N, 3]`` -> field coordinates in ``[-1, 1]^3``."""
        return (x - self.centre) / self.half

    def density_fn(self, field: Field, t: float | None = None):
        """``world points [N, 3] -> sigma [N]`` closure for the occupancy grid and exporters."""

        def fn(x: Tensor) -> Tensor:
            times = None if t is None else torch.full((x.shape[0], 1), float(t))
            return field.density(self.normalize(x), times)[0]

        return fn

    def sample(self, field: Field, origins: Tensor, dirs: Tensor, times: Tensor | None = None,
               jitter: bool = False, prune: bool = True) -> PackedSamples:
        """Packed samples in occupied space; with ``prune`` a no-grad density pass drops hidden ones."""
        samples = march(self.grid, origins, dirs, self.near, self.step_size, self.cfg.cone_angle, jitter)
        if prune and (self.cfg.early_stop_eps > 0 or self.cfg.alpha_threshold > 0):
            def sigma_fn(s: PackedSamples) -> Tensor:
                t = None if times is None else times[s.ray_indices, None]
                return field.density(self.normalize(s.midpoints(origins, dirs)), t)[0]

            samples = prune_samples(samples, sigma_fn, self.cfg.early_stop_eps, self.cfg.alpha_threshold)
        return samples

    def render_rays(self, field: Field, origins: Tensor, dirs: Tensor, times: Tensor | None = None,
                    background: Tensor | None = None, training: bool = False) -> dict[str, Tensor]:
        """Render rays ``[R, 3]`` (``times [R]`` for dynamic fields).

        Returns ``rgb [R, 3]``, ``opacity [R]``, ``depth [R]``, the sample ``weights [S]`` and the
        ``samples`` themselves (for losses and distillation), and ``n_samples``.
        """
        samples = self.sample(field, origins, dirs, times, jitter=training)
        x = self.normalize(samples.midpoints(origins, dirs))
        t = None if times is None else times[samples.ray_indices, None]
        sigma, geo = field.density(x, t)
        rgb = field.color(x, dirs[samples.ray_indices], geo, t)
        out = composite(samples.t_starts, samples.t_ends, sigma, rgb, samples.ray_indices, origins.shape[0], background)
        out["samples"] = samples
        out["n_samples"] = torch.tensor(len(samples))
        return out

    @torch.no_grad()
    def render_camera(self, field: Field, cameras: Cameras, index: int, time: float | None = None,
                      background: Tensor | None = None) -> dict[str, Tensor]:
        """Render one full image: ``rgb [H, W, 3]``, ``depth [H, W]``, ``opacity [H, W]``, in chunks."""
        origins, dirs = cameras.image_rays(index)
        h, w = origins.shape[:2]
        origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
        buffers: dict[str, list[Tensor]] = {"rgb": [], "depth": [], "opacity": []}
        for start in range(0, origins.shape[0], self.cfg.chunk_rays):
            sl = slice(start, start + self.cfg.chunk_rays)
            times = None if time is None else torch.full((origins[sl].shape[0],), float(time))
            out = self.render_rays(field, origins[sl], dirs[sl], times, background)
            for key in buffers:
                buffers[key].append(out[key])
        return {k: torch.cat(v).reshape(h, w, -1).squeeze(-1) for k, v in buffers.items()}
