"""Rays -> rendered buffers for any field, through the occupancy grid.

The renderer only calls the field protocol (``density`` and ``color``); it normalises world
points so that the scene box maps to ``[-1, 1]^3`` before the field sees them.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..cameras import Cameras
from ..config import RenderConfig
from ..fields.base import Field
from .compositing import accumulate, composite
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
        self.diagonal = diagonal = float((inner[1] - inner[0]).norm())
        self.step_size = self.cfg.render_step_size or diagonal / self.cfg.samples_per_diagonal
        # The grid thresholds density x a fixed reference step (Instant-NGP's diagonal / 1024),
        # so what counts as empty does not change when a preset renders with coarser steps.
        self.occupancy_step = diagonal / 1024

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

    def surface_normals(self, field: Field, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Density and unit normals at world points ``x [S, 3]``: ``sigma [S]``, ``geo [S, F]``, ``normal [S, 3]``.

        The normal is minus the density gradient (density rises into matter), taken by autograd
        through ``field.density`` in field coordinates and mapped back to world space (the
        normalisation scales each axis by ``1 / half``). Only the gradient is kept, so any field
        that is differentiable in its input works.
        """
        with torch.enable_grad():
            xn = self.normalize(x).detach().requires_grad_(True)
            sigma, geo = field.density(xn, t)
            (grad,) = torch.autograd.grad(sigma.sum(), xn)
        grad = grad / self.half
        normal = -grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return sigma.detach(), geo.detach(), normal

    @torch.no_grad()
    def render_chunk(self, field: Field, origins: Tensor, dirs: Tensor, times: Tensor | None = None,
                     background: Tensor | None = None, normals: bool = False) -> dict[str, Tensor]:
        """Inference render of rays ``[R, 3]``; with ``normals`` also ``normal [R, 3]``.

        Composited normals are the weight-average of per-sample density-gradient normals,
        renormalised (zero where a ray hits nothing).
        """
        if not normals:
            return self.render_rays(field, origins, dirs, times, background)
        samples = self.sample(field, origins, dirs, times)
        x = samples.midpoints(origins, dirs)
        t = None if times is None else times[samples.ray_indices, None]
        sigma, geo, normal = self.surface_normals(field, x, t)
        rgb = field.color(self.normalize(x), dirs[samples.ray_indices], geo, t)
        out = composite(samples.t_starts, samples.t_ends, sigma, rgb, samples.ray_indices, origins.shape[0], background)
        n = accumulate(out["weights"], normal, samples.ray_indices, origins.shape[0])
        out["normal"] = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        out["samples"] = samples
        out["n_samples"] = torch.tensor(len(samples))
        return out

    def render_camera(self, field: Field, cameras: Cameras, index: int, time: float | None = None,
                      background: Tensor | None = None, outputs: Sequence[str] | None = None,
                      chunk: int | None = None) -> dict[str, Tensor]:
        """Render one full image of ``cameras[index]`` in chunks of rays.

        Rays are generated per chunk, so memory beyond the output buffers stays bounded at any
        resolution. ``outputs`` picks buffers among ``rgb [H, W, 3]``, ``depth [H, W]``,
        ``opacity [H, W]`` and ``normal [H, W, 3]`` (world-space unit normals); default: the first three.
        """
        outputs = tuple(outputs) if outputs is not None else ("rgb", "depth", "opacity")
        unknown = [o for o in outputs if o not in RENDER_OUTPUTS]
        if unknown:
            raise ValueError(f"unknown render outputs {unknown}; available: {', '.join(RENDER_OUTPUTS)}")
        chunk = chunk or self.cfg.chunk_rays
        w, h = int(cameras.width[index]), int(cameras.height[index])
        n = w * h
        buffers = {k: torch.empty(n, RENDER_OUTPUTS[k]) for k in outputs}
        for start in range(0, n, chunk):
            pix = torch.arange(start, min(start + chunk, n))
            cam = torch.full_like(pix, index)
            origins, dirs = cameras.rays(cam, (pix % w).float() + 0.5, (pix // w).float() + 0.5)
            times = None if time is None else torch.full((pix.shape[0],), float(time))
            out = self.render_chunk(field, origins, dirs, times, background, normals="normal" in outputs)
            for key, buf in buffers.items():
                buf[start:start + pix.shape[0]] = out[key].reshape(pix.shape[0], -1)
        return {k: v.reshape(h, w, -1).squeeze(-1) if RENDER_OUTPUTS[k] == 1 else v.reshape(h, w, -1)
                for k, v in buffers.items()}


# Buffers render_camera can produce, with their channel counts.
RENDER_OUTPUTS: dict[str, int] = {"rgb": 3, "depth": 1, "opacity": 1, "normal": 3}
