"""Ray marching through the occupancy grid into packed samples (pure PyTorch).

Candidate intervals follow one global sequence of distances: uniform steps of ``step_size``,
or with ``cone_angle > 0`` steps ``clamp(t * cone_angle, step_size, max_step)`` that grow with
distance as in Instant-NGP. Each ray keeps the candidates inside its slab interval with the
scene box whose midpoint lies in an occupied cell. Training jitters each ray's sequence by a
random fraction of a step so that the field sees continuous positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .compositing import render_weights, segment_first
from .occupancy import OccupancyGrid


@dataclass
class PackedSamples:
    """Samples of ``n_rays`` rays, sorted by ray then distance: nothing but tensors and the ray count.

    ``S`` is the samples' capacity. Compositing reads only intervals, so an entry with
    ``t_starts == t_ends`` weighs nothing: a sampler with a capacity fixed in advance (no host
    round trip to learn how many samples it made) pads with such entries at the end of the last
    ray, and every consumer stays correct.

    Attributes:
        ray_indices: ``[S]`` int64 ray of each sample.
        t_starts, t_ends: ``[S]`` interval along the ray.
        n_rays: how many rays the samples belong to.
    """

    ray_indices: Tensor
    t_starts: Tensor
    t_ends: Tensor
    n_rays: int

    def __len__(self) -> int:
        return self.ray_indices.shape[0]

    def midpoints(self, origins: Tensor, dirs: Tensor) -> Tensor:
        """World positions ``[S, 3]`` of the interval midpoints."""
        t = (self.t_starts + self.t_ends)[:, None] * 0.5
        return origins[self.ray_indices] + dirs[self.ray_indices] * t

    def select(self, keep: Tensor) -> "PackedSamples":
        return PackedSamples(self.ray_indices[keep], self.t_starts[keep], self.t_ends[keep], self.n_rays)


def ray_aabb(origins: Tensor, dirs: Tensor, aabb: Tensor) -> tuple[Tensor, Tensor]:
    """Slab test: entry and exit distances ``[R]`` (exit <= entry for a miss)."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-12, torch.full_like(dirs, 1e-12), dirs)
    t0 = (aabb[0] - origins) * inv
    t1 = (aabb[1] - origins) * inv
    return torch.minimum(t0, t1).amax(-1), torch.maximum(t0, t1).amin(-1)


def step_sequence(t_min: float, t_max: float, step_size: float, cone_angle: float = 0.0,
                  max_step: float = 1e10, max_steps: int = 4096, device=None) -> Tensor:
    """Global interval edges ``[K + 1]`` from ``t_min`` covering ``t_max`` (or ``max_steps`` steps)."""
    if cone_angle <= 0:
        k = min(int((t_max - t_min) / step_size) + 2, max_steps + 1)
        return t_min + step_size * torch.arange(k, dtype=torch.float32, device=device)
    edges = [t_min]
    t = t_min
    while t < t_max and len(edges) <= max_steps:
        t = t + min(max(t * cone_angle, step_size), max_step)
        edges.append(t)
    return torch.tensor(edges, dtype=torch.float32, device=device)


def march(grid: OccupancyGrid, origins: Tensor, dirs: Tensor, near: float, step_size: float,
          cone_angle: float = 0.0, jitter: bool = False, chunk: int = 1024, max_steps: int = 4096,
          far: float | None = None, to_grid: Callable[[Tensor], Tensor] | None = None) -> PackedSamples:
    """Packed samples in occupied space for rays ``origins, dirs [R, 3]``.

    By default the grid lies in world space and rays are clipped to its box. For unbounded
    scenes the grid covers a contracted space: every ray runs from ``near`` to ``far`` and
    candidate points go through ``to_grid`` (world -> grid coordinates) before the lookup;
    steps then grow with distance without bound.
    """
    n_rays = origins.shape[0]
    if far is None:
        t_in, t_out = ray_aabb(origins, dirs, grid.aabb)
        t_in = t_in.clamp_min(near)
    else:
        t_in = torch.full((n_rays,), float(near), device=origins.device)
        t_out = torch.full_like(t_in, float(far))
    hit = t_out > t_in
    empty = torch.zeros(0, dtype=torch.long, device=origins.device)
    if not hit.any():
        return PackedSamples(empty, empty.float(), empty.float(), n_rays)
    max_step = 1e10 if cone_angle <= 0 or far is not None else step_size * 64
    edges = step_sequence(t_in[hit].min().item(), t_out[hit].max().item(), step_size, cone_angle, max_step,
                          max_steps, origins.device)
    widths = edges[1:] - edges[:-1]  # [K]
    parts_ray, parts_t0, parts_t1 = [], [], []
    for start in range(0, n_rays, chunk):
        sl = slice(start, min(start + chunk, n_rays))
        o, d, lo, hi = origins[sl], dirs[sl], t_in[sl], t_out[sl]
        inside = hi > lo
        if not inside.any():
            continue
        # Only the steps that this chunk's rays can use: neighbouring pixels span a narrow range.
        k0 = max(int(torch.searchsorted(edges, lo[inside].min(), right=True)) - 1, 0)
        k1 = min(int(torch.searchsorted(edges, hi[inside].max())), len(widths))
        shift = torch.rand(o.shape[0], 1, device=o.device) if jitter else torch.zeros(o.shape[0], 1, device=o.device)
        t0 = edges[None, k0:k1] + shift * widths[None, k0:k1]  # [r, K']
        t1 = t0 + widths[None, k0:k1]
        mid = (t0 + t1) * 0.5
        candidate = (mid > lo[:, None]) & (mid < hi[:, None])
        rows, cols = candidate.nonzero(as_tuple=True)
        pts = o[rows] + d[rows] * mid[rows, cols, None]
        occupied = grid.lookup(pts if to_grid is None else to_grid(pts))
        rows, cols = rows[occupied], cols[occupied]
        parts_ray.append(rows + start)
        parts_t0.append(t0[rows, cols])
        parts_t1.append(t1[rows, cols])
    if not parts_ray:
        return PackedSamples(empty, empty.float(), empty.float(), n_rays)
    return PackedSamples(torch.cat(parts_ray), torch.cat(parts_t0), torch.cat(parts_t1), n_rays)


@torch.no_grad()
def prune_samples(samples: PackedSamples, sigma_fn: Callable[[PackedSamples], Tensor], early_stop_eps: float = 1e-4,
                  alpha_threshold: float = 0.0, first_phase: int = 16) -> PackedSamples:
    """Drop samples hidden behind opaque matter or nearly transparent, using a no-grad density pass.

    This is how the trainer spends its backward pass only on samples that shape the image.
    Densities are queried front to back in phases (the first ``first_phase`` samples of every
    ray, then twice as many, ...), and a ray whose transmittance has fallen below
    ``early_stop_eps`` is not queried further: behind a surface most of a ray's occupied samples
    would otherwise be evaluated for nothing. The kept set is the same as one pass over all.
    """
    if len(samples) == 0 or (early_stop_eps <= 0 and alpha_threshold <= 0):
        return samples
    ray = samples.ray_indices
    if early_stop_eps <= 0:
        sigmas = sigma_fn(samples)
        evaluated = torch.ones_like(ray, dtype=torch.bool)
    else:
        rank = sample_ranks(ray)
        sigmas = torch.zeros(len(samples), device=ray.device)
        evaluated = torch.zeros(len(samples), dtype=torch.bool, device=ray.device)
        tau = torch.zeros(samples.n_rays, dtype=torch.float64, device=ray.device)
        tau_stop = -math.log(early_stop_eps)
        lo, width, last = 0, first_phase, int(rank.max())
        while lo <= last:
            chosen = (rank >= lo) & (rank < lo + width)
            if lo > 0:
                chosen &= (tau < tau_stop)[ray]
            idx = chosen.nonzero().squeeze(1)
            if idx.numel() == 0:
                break  # every ray still holding samples has stopped
            part = samples.select(idx)
            sigma = sigma_fn(part)
            sigmas[idx] = sigma
            evaluated[idx] = True
            tau.index_add_(0, part.ray_indices, (sigma * (part.t_ends - part.t_starts)).double())
            lo, width = lo + width, width * 2
    _, transmittance, alphas = render_weights(samples.t_starts, samples.t_ends, sigmas, ray)
    keep = evaluated & (transmittance > early_stop_eps) & (alphas >= alpha_threshold)
    return samples.select(keep)


def sample_ranks(ray_indices: Tensor) -> Tensor:
    """``[S]`` position of each sample within its ray (0 for the first), samples sorted by ray."""
    return torch.arange(len(ray_indices), device=ray_indices.device) - segment_first(ray_indices)
