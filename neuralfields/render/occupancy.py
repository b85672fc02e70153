"""Occupancy grid: which cells of the scene box may contain matter (pure PyTorch).

The grid keeps an exponential moving average of each cell's density (times the render step,
so it is an opacity-like number) and a boolean ``binary`` copy that the ray marcher reads.
Scenes larger than the object box (instant-ngp's ``aabb_scale``) use cascades: level ``l``
covers the scene box shrunk by ``2^(L-1-l)`` around its centre, all at the same resolution,
so cells grow with distance from the centre. A point is looked up in the finest level that
contains it; coarse cells hidden behind finer levels are never used.

Until the first update every cell counts as occupied, so early training samples everywhere.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn


def cascade_levels(aabb_scale: float) -> int:
    return max(1, int(math.ceil(math.log2(max(aabb_scale, 1.0)))) + 1)


class OccupancyGrid(nn.Module):
    """``levels`` cascades of ``resolution^3`` cells over the scene box ``aabb [2, 3]``."""

    def __init__(self, aabb: Tensor, resolution: int = 128, levels: int = 1):
        super().__init__()
        self.resolution, self.levels = int(resolution), int(levels)
        aabb = torch.as_tensor(aabb, dtype=torch.float32).reshape(2, 3)
        centre, half = (aabb[0] + aabb[1]) / 2, (aabb[1] - aabb[0]) / 2
        scales = torch.tensor([2.0 ** (l - levels + 1) for l in range(levels)])
        self.register_buffer("aabb", aabb)
        self.register_buffer("level_min", centre - half * scales[:, None])  # [L, 3]
        self.register_buffer("level_size", 2 * half * scales[:, None])  # [L, 3]
        n = resolution**3
        self.register_buffer("density", torch.zeros(levels, n))
        self.register_buffer("binary", torch.ones(levels, n, dtype=torch.bool))
        self.register_buffer("hidden", self._hidden_cells())  # cells covered by a finer level
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.diagonal = float((aabb[1] - aabb[0]).norm())  # on the host: marching sizes chunks with it

    def _hidden_cells(self) -> Tensor:
        hidden = torch.zeros(self.levels, self.resolution**3, dtype=torch.bool)
        if self.levels > 1:
            centres = self.cell_points(0, torch.arange(self.resolution**3), jitter=False)  # unit coords
            inner = ((centres - 0.5).abs() < 0.25).all(-1)  # inside the next finer level (half size)
            hidden[1:] = inner
        return hidden

    @property
    def inner_aabb(self) -> Tensor:
        """``[2, 3]`` box of the finest level (the object region)."""
        return torch.stack([self.level_min[0], self.level_min[0] + self.level_size[0]])

    def cell_points(self, level: int, cells: Tensor, jitter: bool = True) -> Tensor:
        """Points ``[C, 3]`` in the unit cube of ``level`` for flat cell indices ``[C]`` (x fastest)."""
        r = self.resolution
        ijk = torch.stack([cells % r, (cells // r) % r, cells // (r * r)], dim=-1).float()
        offset = torch.rand_like(ijk) if jitter else torch.full_like(ijk, 0.5)
        return (ijk + offset) / r

    def to_world(self, level: int, unit: Tensor) -> Tensor:
        return self.level_min[level] + unit * self.level_size[level]

    def lookup(self, x: Tensor) -> Tensor:
        """``[N]`` bool: is the cell containing world point ``x [N, 3]`` occupied (False outside the box)."""
        r = self.resolution
        if self.levels == 1:
            cells = (x - self.level_min[0]) * (r / self.level_size[0])
            inside = (cells - r / 2).abs().amax(-1) <= r / 2
            return inside & self.lookup_cells(cells)
        centre = self.level_min[-1] + self.level_size[-1] / 2
        rel = ((x - centre) / (self.level_size[-1] / 2)).abs().amax(-1)  # 1 at the scene box surface
        # Finest level containing the point: level l covers rel < 2^(l - L + 1).
        level = torch.clamp(torch.ceil(torch.log2(rel.clamp_min(1e-12))) + self.levels - 1, min=0).long()
        inside = level < self.levels
        level = level.clamp_max(self.levels - 1)
        unit = (x - self.level_min.index_select(0, level)) / self.level_size.index_select(0, level)
        ijk = (unit * r).long().clamp_(0, r - 1)
        flat = ijk[:, 0] + r * (ijk[:, 1] + r * ijk[:, 2])
        return inside & self.binary.view(-1).index_select(0, level * r**3 + flat)

    def lookup_cells(self, cells: Tensor) -> Tensor:
        """``[N]`` bool for points ``cells [N, 3]`` in cell units of a one-level grid (``0..resolution``
        across the box; points outside count as the nearest boundary cell)."""
        r = self.resolution
        ijk = cells.long().clamp_(0, r - 1)
        return self.binary[0].index_select(0, ijk[:, 0] + r * (ijk[:, 1] + r * ijk[:, 2]))

    def cell_rays(self, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        """Rays ``[R, 3]`` in a one-level grid's cell units: ``origins + t dirs`` is the point at ``t``."""
        scale = self.resolution / self.level_size[0]
        return (origins - self.level_min[0]) * scale, dirs * scale

    @torch.no_grad()
    def update(self, density_fn: Callable[[Tensor], Tensor], step_size: float, warmup: bool = False,
               ema_decay: float = 0.95, threshold: float = 0.01, chunk: int = 1 << 16) -> None:
        """Refresh cell densities from ``density_fn(world points [N, 3]) -> [N]``.

        During warm-up every cell is evaluated; afterwards a random quarter of the cells plus as
        many currently occupied ones, as in Instant-NGP. A cell is occupied when its decayed
        maximum of ``density * step_size`` exceeds ``min(threshold, mean over cells)``.
        """
        n = self.resolution**3
        for level in range(self.levels):
            if warmup:
                cells = torch.arange(n, device=self.density.device)
            else:
                uniform = torch.randint(0, n, (n // 4,), device=self.density.device)
                occupied = self.binary[level].nonzero()[:, 0]
                if len(occupied) > n // 4:
                    occupied = occupied[torch.randint(0, len(occupied), (n // 4,), device=occupied.device)]
                cells = torch.cat([uniform, occupied])
            cells = cells[~self.hidden[level, cells]]
            values = torch.cat([
                density_fn(self.to_world(level, self.cell_points(level, part))).reshape(-1) * step_size
                for part in cells.split(chunk)
            ]) if len(cells) else torch.zeros(0, device=self.density.device)
            current = self.density[level]
            current[cells] = torch.maximum(current[cells] * ema_decay, values.to(current.dtype))
        visible = self.density[~self.hidden]
        cutoff = min(threshold, visible.mean().item())
        self.binary.copy_((self.density > cutoff) & ~self.hidden)
        self.updates += 1

    def occupancy_fraction(self) -> float:
        return self.binary[~self.hidden].float().mean().item()
