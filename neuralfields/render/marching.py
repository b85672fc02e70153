"""Ray marching through the occupancy grid into packed samples (pure PyTorch).

Candidate intervals follow one global sequence of distances from ``near``: uniform steps of
``step_size``, or with ``cone_angle > 0`` steps ``clamp(t * cone_angle, step_size, max_step)``
that grow with distance as in Instant-NGP (a table of edges computed once on the host). Each ray
takes the intervals whose midpoint lies inside its slab interval with the scene box (or between
``near`` and ``far``) and in an occupied cell. Training shifts each ray's sequence by a random
fraction of a step so that the field sees continuous positions.

Host round trips are counted, not hidden: a GPU waits whenever the host reads a size. Marching
reads one per chunk of rays on an accelerator (how many candidates are occupied; two on a CPU,
which also reads how many there are: :class:`MarchPlan`) and pruning two more;
everything else (ranks, compaction, transmittance) stays on the device as cumulative sums and
``nonzero_static`` of sizes already read. On an accelerator a training batch is one chunk.
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
class MarchPlan:
    """How candidates are enumerated on a kind of device.

    ``dense``: every ray gets the most candidate slots any ray can need, invalid ones masked, so the
    host never reads how many there are (an accelerator has memory to spare and a round trip to
    save); otherwise exactly each ray's own count (a CPU has no round trip to save and less to
    spend). ``chunk_candidates``: candidates per chunk of rays; on an accelerator a training batch
    is one chunk, so its host reads stay at one; a CPU runs faster on chunks that fit its caches.
    """

    dense: bool
    chunk_candidates: int


# ``scripts/count_syncs.py`` counts a CPU run with the accelerator's plan.
MARCH_PLANS = {"cpu": MarchPlan(dense=False, chunk_candidates=1 << 18),
               "accelerator": MarchPlan(dense=True, chunk_candidates=1 << 26)}
# Pruning queries the first samples of every ray, then the rest of the rays still transparent:
# behind a surface most occupied samples need no query. Two phases keep the host reads fixed;
# with 32 samples in the first they cost the same CPU time as doubling phases did.
FIRST_PHASE = 32


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
        return origins.index_select(0, self.ray_indices) + dirs.index_select(0, self.ray_indices) * t

    def select(self, keep: Tensor) -> "PackedSamples":
        """The samples at ``keep``: int64 indices (in order) or a bool mask ``[S]``."""
        if keep.dtype == torch.bool:
            return PackedSamples(self.ray_indices[keep], self.t_starts[keep], self.t_ends[keep], self.n_rays)
        return PackedSamples(self.ray_indices.index_select(0, keep), self.t_starts.index_select(0, keep),
                             self.t_ends.index_select(0, keep), self.n_rays)

    @staticmethod
    def cat(parts: list["PackedSamples"], n_rays: int) -> "PackedSamples":
        return PackedSamples(torch.cat([p.ray_indices for p in parts]), torch.cat([p.t_starts for p in parts]),
                             torch.cat([p.t_ends for p in parts]), n_rays)


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


def exclusive_cumsum(counts: Tensor) -> Tensor:
    return torch.cumsum(counts, 0) - counts


def nonzero_count(mask: Tensor, count: int) -> Tensor:
    """``[count]`` indices of the True entries of ``mask`` whose count the host already read."""
    return torch.nonzero_static(mask, size=count)[:, 0]


def march(grid: OccupancyGrid, origins: Tensor, dirs: Tensor, near: float, step_size: float,
          jitter: bool = False, edges: Tensor | None = None, far: float | None = None,
          to_grid: Callable[[Tensor], Tensor] | None = None, max_steps: int = 4096) -> PackedSamples:
    """Packed samples in occupied space for rays ``origins, dirs [R, 3]`` (see :func:`march_counted`)."""
    return march_counted(grid, origins, dirs, near, step_size, jitter, edges, far, to_grid, max_steps)[0]


def march_counted(grid: OccupancyGrid, origins: Tensor, dirs: Tensor, near: float, step_size: float,
                  jitter: bool = False, edges: Tensor | None = None, far: float | None = None,
                  to_grid: Callable[[Tensor], Tensor] | None = None, max_steps: int = 4096,
                  prefix: int = 0) -> tuple[PackedSamples, int]:
    """Packed samples in occupied space, and how many of them are among their ray's first ``prefix``.

    ``edges [K + 1]`` (host-made, on the rays' device) are the cone-angle sequence; None means
    uniform steps of ``step_size`` from ``near``. By default the grid lies in world space and rays
    are clipped to its box. For unbounded scenes the grid covers a contracted space: every ray runs
    from ``near`` to ``far`` and candidate points go through ``to_grid`` (world -> grid
    coordinates) before the lookup. At most ``max_steps`` candidates per ray.
    """
    n_rays = origins.shape[0]
    if far is None:
        t_in, t_out = ray_aabb(origins, dirs, grid.aabb)
        t_in = t_in.clamp_min(near)
    else:
        t_in = torch.full((n_rays,), float(near), device=origins.device)
        t_out = torch.full_like(t_in, float(far))
    shift = torch.rand(n_rays, device=origins.device) if jitter else torch.zeros(n_rays, device=origins.device)
    if edges is None:
        # Interval k is near + (k + shift) * step + [0, step]; its midpoint lies in (t_in, t_out)
        # for k in [k_lo, k_hi).
        k_lo = torch.floor((t_in - near) / step_size - shift - 0.5) + 1
        k_hi = torch.ceil((t_out - near) / step_size - shift - 0.5)
    else:
        last = edges.shape[0] - 1
        # A shifted interval's midpoint can pass the next edge: start one interval early.
        k_lo = (torch.searchsorted(edges, t_in.contiguous(), right=True) - 2).clamp(0, last)
        k_hi = torch.searchsorted(edges, t_out.contiguous()).clamp(0, last)
    counts = (k_hi - k_lo).clamp(0, max_steps).long()
    counts = torch.where(t_out > t_in, counts, torch.zeros_like(counts))
    # The most candidates a ray can have, known on the host: a chord of the box spans at most its
    # diagonal and no step is shorter than ``step_size``; rays to ``far`` take the whole sequence.
    if far is None:
        per_ray = int(math.ceil(grid.diagonal / step_size)) + 2
    else:
        per_ray = edges.shape[0] - 1 if edges is not None else int(math.ceil((far - near) / step_size)) + 2
    per_ray = min(max_steps, per_ray)
    plan = MARCH_PLANS["cpu" if origins.device.type == "cpu" else "accelerator"]
    rays_per_chunk = max(1, plan.chunk_candidates // per_ray)
    parts, n_prefix = [], 0
    for start in range(0, n_rays, rays_per_chunk):
        sl = slice(start, min(start + rays_per_chunk, n_rays))
        part, n = _march_chunk(grid, origins[sl], dirs[sl], t_in[sl], t_out[sl], shift[sl], k_lo[sl].long(),
                               counts[sl], near, step_size, edges, to_grid, prefix, per_ray if plan.dense else 0)
        part.ray_indices += start
        parts.append(part)
        n_prefix += n
    if len(parts) == 1:
        parts[0].n_rays = n_rays
        return parts[0], n_prefix
    return PackedSamples.cat(parts, n_rays), n_prefix


def _march_chunk(grid: OccupancyGrid, origins: Tensor, dirs: Tensor, t_in: Tensor, t_out: Tensor, shift: Tensor,
                 k_lo: Tensor, counts: Tensor, near: float, step_size: float, edges: Tensor | None,
                 to_grid: Callable[[Tensor], Tensor] | None, prefix: int, slots: int) -> tuple[PackedSamples, int]:
    """One chunk of :func:`march_counted`: enumerate every ray's candidates (``counts [r]`` from
    step ``k_lo [r]``), look them all up at once, keep the occupied ones. With ``slots > 0`` each
    ray gets that many candidate slots (one host read: how many are occupied); otherwise exactly
    its own (two)."""
    device, r = origins.device, origins.shape[0]
    if slots:
        ray = torch.arange(r, device=device).repeat_interleave(slots, output_size=r * slots)
        first = ray * slots
        local = torch.arange(slots, device=device).repeat(r)
        valid = local < counts.index_select(0, ray)
    else:
        total = int(counts.sum())
        if total == 0:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return PackedSamples(empty, empty.float(), empty.float(), r), 0
        ray = torch.repeat_interleave(torch.arange(r, device=device), counts, output_size=total)
        first = exclusive_cumsum(counts).index_select(0, ray)  # each candidate's ray's first candidate
        local = torch.arange(total, device=device) - first  # candidate number within its ray
        valid = None
    if edges is None:
        start = near + (k_lo.to(shift.dtype) + shift) * step_size  # [r] each ray's first interval
        t0 = start.index_select(0, ray) + local.to(start.dtype) * step_size
        width = torch.full_like(t0, step_size)
    else:
        k = k_lo.index_select(0, ray) + local
        if valid is not None:
            k = k.clamp_max(edges.shape[0] - 2)  # masked slots past the table
        width = (edges[1:] - edges[:-1]).index_select(0, k)
        t0 = edges.index_select(0, k) + shift.index_select(0, ray) * width
    mid = t0 + 0.5 * width
    if to_grid is None and grid.levels == 1 and edges is None:
        # The common case, in the grid's own units: every midpoint lies inside the box.
        o, d = grid.cell_rays(origins, dirs)
        occupied = grid.lookup_cells(torch.addcmul(o.index_select(0, ray), d.index_select(0, ray), mid[:, None]))
    else:
        points = torch.addcmul(origins.index_select(0, ray), dirs.index_select(0, ray), mid[:, None])
        occupied = grid.lookup(points if to_grid is None else to_grid(points))
    if edges is not None:  # the table's range is approximate at both ends
        occupied &= (mid > t_in.index_select(0, ray)) & (mid < t_out.index_select(0, ray))
    if valid is not None:
        occupied &= valid
    taken = torch.cumsum(occupied, 0)
    before = taken - occupied.long()  # occupied candidates before each one
    rank = before - before.index_select(0, first)  # ... within its own ray
    if len(occupied) == 0:
        return PackedSamples(ray, mid[:0], mid[:0], r), 0
    n_occupied, n_prefix = torch.stack([taken[-1], (occupied & (rank < prefix)).sum()]).tolist()
    keep = nonzero_count(occupied, n_occupied)
    t0 = t0.index_select(0, keep)
    return PackedSamples(ray.index_select(0, keep), t0, t0 + width.index_select(0, keep), r), n_prefix


@torch.no_grad()
def prune_samples(samples: PackedSamples, sigma_fn: Callable[[PackedSamples], Tensor], early_stop_eps: float = 1e-4,
                  alpha_threshold: float = 0.0, first_phase: int = FIRST_PHASE,
                  n_first: int | None = None) -> PackedSamples:
    """Drop samples hidden behind opaque matter or nearly transparent, using a no-grad density pass.

    This is how the trainer spends its backward pass only on samples that shape the image.
    Densities are queried in two phases: the first ``first_phase`` samples of every ray (``n_first``
    of them when the caller already counted them: :func:`march_counted`), then the rest of the rays
    whose transmittance is still above ``early_stop_eps``. The kept set is the same as one pass
    over all samples would keep.
    """
    if len(samples) == 0 or (early_stop_eps <= 0 and alpha_threshold <= 0):
        return samples
    ray = samples.ray_indices
    dt = samples.t_ends - samples.t_starts
    if early_stop_eps <= 0:
        sigmas = sigma_fn(samples)
        evaluated = torch.ones_like(ray, dtype=torch.bool)
    else:
        first = sample_ranks(ray) < first_phase
        if n_first is None:
            n_first = int(first.sum())
        sigmas = torch.zeros(len(samples), device=ray.device)
        idx = nonzero_count(first, n_first)
        sigmas.index_copy_(0, idx, sigma_fn(samples.select(idx)).to(sigmas.dtype))
        tau = torch.zeros(samples.n_rays, device=ray.device).index_add_(0, ray, sigmas * dt)
        second = ~first & (tau < -math.log(early_stop_eps)).index_select(0, ray)
        n_second = int(second.sum())
        if n_second:
            idx = nonzero_count(second, n_second)
            sigmas.index_copy_(0, idx, sigma_fn(samples.select(idx)).to(sigmas.dtype))
        evaluated = first | second
    _, transmittance, alphas = render_weights(samples.t_starts, samples.t_ends, sigmas, ray)
    keep = evaluated & (transmittance > early_stop_eps) & (alphas >= alpha_threshold)
    return samples.select(nonzero_count(keep, int(keep.sum())))


def sample_ranks(ray_indices: Tensor) -> Tensor:
    """``[S]`` position of each sample within its ray (0 for the first), samples sorted by ray."""
    return torch.arange(len(ray_indices), device=ray_indices.device) - segment_first(ray_indices)
