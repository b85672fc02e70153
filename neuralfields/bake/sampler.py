"""Marching a baked lattice: samples only in kept blocks, rays stopped once they are opaque.

Rays take coarse steps of about one block in the normalised distance of
:class:`~neuralfields.render.samplers.span.RaySpan` (linear in a box; linear then in disparity in
contracted space, where it tracks field coordinates). A step whose midpoint lies in a kept block
is occupied. Occupied steps are processed in waves, front to back: each live ray takes its next
few occupied steps, each cut into fine samples (about one per lattice cell) whose densities come
from the lattice; a ray leaves once its transmittance falls below a bar, and samples that cannot
show (weight below another bar) are dropped; fine samples are taken only in cells the bake
marked as possibly visible. The scene renders with a fraction of the samples
and none of the hash-grid work of the live field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from typing import Callable

from ..errors import NeuralFieldsError
from ..render.compositing import render_weights
from ..render.marching import PackedSamples, sample_ranks
from ..render.rays import RayBatch
from ..render.samplers.span import RaySpan
from ..compiling import maybe_compile
from .lattice import BlockLattice, occupied_cells, occupied_groups


@dataclass
class MarchConfig:
    """How the baked sampler steps through the lattice."""

    # Coarse steps per cell group: a step up to two groups long has its midpoint within one group
    # of everything it crosses, and marked groups are grown by one group.
    steps_per_group: float = 0.5
    samples_per_step: int = 0  # fine samples in each occupied coarse step (0: one per ``cells_per_sample``)
    cells_per_sample: float = 2.0  # fine-sample spacing in lattice cells (a live field steps about 1.7)
    steps_per_wave: int = 4  # occupied coarse steps each live ray takes per wave
    stop_transmittance: float = 1e-4  # a ray whose transmittance falls below this takes no more steps
    drop_weight: float = 1e-4  # samples weighing less than this are left out


def occupied_midpoints(origins: Tensor, dirs: Tensor, ray: Tensor, mid: Tensor, centre: Tensor, half: Tensor,
                       contracted: bool, resolution: int, group: int, groups: Tensor) -> Tensor:
    """``[P]`` bool: the points at distances ``mid [P]`` along rays ``ray [P]`` (of ``origins, dirs
    [R, 3]``, indexed here, where the gather fuses into the test) lie in marked cell groups. Flat
    on purpose: a compiled kernel over ``[P, K]`` steps pays an integer division by ``K`` per element."""
    points = origins[ray] + dirs[ray] * mid[:, None]
    return occupied_groups(points, centre, half, contracted, resolution, group, groups)


def fine_samples(origins: Tensor, dirs: Tensor, ray: Tensor, t0: Tensor, t1: Tensor, frac: Tensor, centre: Tensor,
                 half: Tensor, contracted: bool, resolution: int, block: int, block_index: Tensor,
                 cells: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Steps ``[t0, t1]`` ``[m]`` of rays ``ray [m]`` cut at fractions ``frac [F + 1]``: the samples'
    start and end distances ``[m F]``, field coordinates ``[m F, 3]`` and whether their cell may show."""
    edges = t0[:, None] + (t1 - t0)[:, None] * frac[None]
    starts, ends = edges[:, :-1], edges[:, 1:]
    mid = 0.5 * (starts + ends)
    points = (origins[ray][:, None] + dirs[ray][:, None] * mid[..., None]).reshape(-1, 3)
    u, keep = occupied_cells(points, centre, half, contracted, resolution, block, block_index, cells)
    return starts.reshape(-1), ends.reshape(-1), u, keep


_occupied_midpoints = maybe_compile(occupied_midpoints)
_fine_samples = maybe_compile(fine_samples)


class BakedSampler(nn.Module):
    """Packed samples in the kept blocks of ``lattice`` for rays through ``space`` (see module doc);
    ``activation`` turns the lattice's raw density into density (the trained field's)."""

    initial_samples_per_ray = 0
    grid = world_grid = None  # no occupancy grid: the lattice's blocks say where matter is

    def __init__(self, lattice: BlockLattice, space, span: RaySpan, activation: Callable[[Tensor], Tensor],
                 cfg: MarchConfig | None = None):
        super().__init__()
        self.lattice, self.space, self.span, self.cfg = lattice, space, span, cfg or MarchConfig()
        self.activation = activation
        extent = lattice.resolution // lattice.group
        if not span.unbounded:
            # Bounded rays are clipped to the box around the kept blocks: most pixels of an object
            # miss it, and the rest march only across it.
            kept = (lattice.block_index.reshape((lattice.blocks,) * 3) >= 0).nonzero()  # (z, y, x)
            if len(kept):
                lo, hi = kept.amin(0).flip(0), kept.amax(0).flip(0) + 1  # (x, y, z) block corners
                box = torch.stack([lo, hi]).float() * (2.0 / lattice.blocks) - 1.0
                span.aabb.copy_(space.inverse(box))
                extent = int((hi - lo).max()) * (lattice.block // lattice.group)
        self.longest = float((span.aabb[1] - span.aabb[0]).norm())  # the longest chord of a bounded ray
        # Coarse steps of two groups along the longest chord (sqrt(3) box widths), a whole number of
        # the first pass's longer steps.
        f = lattice.coarse
        self.steps = f * max(1, int(math.ceil(self.cfg.steps_per_group * extent * math.sqrt(3) / f)))
        self.step_size = span.diagonal / (lattice.resolution * math.sqrt(3))
        cells_per_step = lattice.group / self.cfg.steps_per_group
        self.samples_per_step = self.cfg.samples_per_step or max(1, round(cells_per_step / self.cfg.cells_per_sample))

    def update(self, step: int, density_fn=None) -> bool:
        return False  # a bake is fixed

    def losses(self, aux: dict, weights: Tensor) -> dict[str, Tensor]:
        return {}

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]:
        return []

    def may_sample(self, u: Tensor, cell_length: Tensor) -> Tensor:
        """``[N]`` bool: field points ``u [N, 3]`` lie in cells the bake marked as possibly visible
        (the only cells this sampler puts fine samples in)."""
        return self.lattice.occupied_cells(self.space.inverse(u), self.space)[1]

    def occupied_steps(self, rays: RayBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The occupied coarse steps of the rays that cross the kept blocks' box, one row per step
        sorted by ray then distance: ray ``[M]``, start and end distances ``[M]``, and the step's
        rank among its ray's occupied steps ``[M]``.

        In a box, two passes: steps ``coarse`` times longer against the lattice's coarse cubes
        first (most of a view is empty: a quarter of the midpoints are tested), then the steps
        inside the occupied long ones against the groups; both mark what one pass over the groups
        would. Contracted space keeps one pass: there the normalised distance follows the camera,
        not the field cube, and where a ray from a camera outside the inner box crosses its middle
        a long step spans far more of the cube than its nominal length (its midpoint missed
        matter; docs/bake.md).
        """
        near, far = self.span.ray_range(rays)
        live = (far > near).nonzero()[:, 0]
        near, far = near[live], far[live]
        lat, space = self.lattice, self.space
        if self.span.unbounded:  # every ray runs to the horizon, across the whole normalised distance
            f = 1
            counts = torch.full_like(live, self.steps)
        else:  # steps of one length: a ray through a corner of the box takes few
            f, k = lat.coarse, self.steps // lat.coarse
            counts = torch.ceil(k * (far - near) / self.longest).long().clamp(1, k)
        ray = torch.repeat_interleave(counts)
        # Start, middle and end of each step in the normalised distance, where steps are cut.
        j = sample_ranks(ray).to(near.dtype)[:, None] + torch.tensor([0.0, 0.5, 1.0], device=near.device)
        s = j / counts[ray, None]  # [M, 3]
        t = self.span.to_distance(s, near[ray], far[ray])
        o, d = rays.origins[live], rays.dirs[live]
        size, marks = (lat.group * f, lat.coarse_groups) if f > 1 else (lat.group, lat.groups)
        hit = _occupied_midpoints(o, d, ray, t[:, 1], space.box_centre, space.box_half, space.unbounded,
                                  lat.resolution, size, marks)
        keep = (hit & (t[:, 2] > t[:, 0])).nonzero()[:, 0]
        ray, s, t = ray[keep], s[keep][:, ::2], t[keep][:, ::2]
        if f > 1:  # the group steps inside the occupied long steps
            frac = torch.arange(f + 1, device=rays.device, dtype=s.dtype) / f
            t = self.span.to_distance(s[:, :1] + (s[:, 1:] - s[:, :1]) * frac, near[ray], far[ray])  # [M, f + 1]
            mid = 0.5 * (t[:, 1:] + t[:, :-1])
            occupied = _occupied_midpoints(o, d, ray[:, None].expand_as(mid).reshape(-1), mid.reshape(-1),
                                           space.box_centre, space.box_half, space.unbounded, lat.resolution,
                                           lat.group, lat.groups).reshape(mid.shape)
            sub, col = occupied.nonzero(as_tuple=True)
            ray, t = ray[sub], torch.stack([t[sub, col], t[sub, col + 1]], -1)
        return live[ray], t[:, 0], t[:, 1], sample_ranks(ray)

    def sample(self, rays: RayBatch, density_fn=None, training: bool = False) -> tuple[PackedSamples, dict]:
        """Packed samples of ``rays`` (rendering only: a baked lattice is not trained). The lattice
        gives the densities itself, in the same fused pass that places the samples, so
        ``density_fn`` is not needed."""
        if training:
            raise NeuralFieldsError("a baked field renders only; train the run's own field")
        c, n, device, lat, space = self.cfg, len(rays), rays.device, self.lattice, self.space
        ray, t0, t1, rank = self.occupied_steps(rays)
        # Waves: the occupied steps of rank [w W, (w + 1) W) of every ray, contiguous after one sort
        # and ordered by ray then distance within each wave (what compositing expects).
        w = c.steps_per_wave
        wave = torch.div(rank, w, rounding_mode="floor")
        order = torch.sort((wave * n + ray) * w + rank % w).indices
        ray, t0, t1, wave = ray[order], t0[order], t1[order], wave[order]
        bounds = torch.searchsorted(wave, torch.arange(int(wave.max()) + 2 if len(wave) else 1, device=device)).tolist()
        log_t = torch.zeros(n, device=device)  # log transmittance of each ray before the current wave
        log_stop = math.log(c.stop_transmittance)
        per_step = self.samples_per_step
        frac = torch.arange(per_step + 1, device=device, dtype=t0.dtype) / per_step
        parts: list[PackedSamples] = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            r, a, b = ray[lo:hi], t0[lo:hi], t1[lo:hi]
            alive = (log_t > log_stop)[r]
            if not bool(alive.any()):
                break  # a ray with steps in a later wave has steps in this one
            r, a, b = r[alive], a[alive], b[alive]
            starts, ends, u, keep = _fine_samples(rays.origins, rays.dirs, r, a, b, frac, space.box_centre,
                                                  space.box_half, space.unbounded, lat.resolution, lat.block,
                                                  lat.block_index, lat.cells)
            pick = keep.nonzero()[:, 0]  # fine samples only in cells that may show
            part = PackedSamples(r[torch.div(pick, per_step, rounding_mode="floor")], starts[pick], ends[pick], n)
            sigma = self.activation(lat.raw_density(u[pick]))
            weights, _, _ = render_weights(part.t_starts, part.t_ends, sigma, part.ray_indices)
            shown = weights * torch.exp(log_t)[part.ray_indices] > c.drop_weight
            parts.append(part.select(shown))
            tau = (sigma * (part.t_ends - part.t_starts)).clamp(max=1e4)
            log_t = log_t.index_add(0, part.ray_indices, -tau)
        if not parts:
            empty = torch.zeros(0, device=device)
            return PackedSamples(empty.long(), empty, empty, n), {}
        ray_indices = torch.cat([p.ray_indices for p in parts])
        order = torch.sort(ray_indices, stable=True).indices  # waves run front to back along each ray
        return PackedSamples(ray_indices[order], torch.cat([p.t_starts for p in parts])[order],
                             torch.cat([p.t_ends for p in parts])[order], n), {}
