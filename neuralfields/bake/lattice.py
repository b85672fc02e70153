"""A block-sparse lattice over the field cube: cached raw density and geometry features.

The cube ``[-1, 1]^3`` (field coordinates, so boxed and contracted scenes bake alike) is cut into
``resolution^3`` cells grouped in blocks of ``block^3`` cells. Only blocks where the field shows
matter are stored: each keeps its own ``(block + 1)^3`` lattice points, so a trilinear lookup
never leaves its block (neighbouring blocks repeat their shared faces: about 40% more rows than
a shared lattice, for a lookup that is one index computation and one ``embedding_bag``). Space
outside the kept blocks is empty.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..compiling import maybe_compile
from ..render.space import box_to_field

EMPTY_RAW = -30.0  # raw density outside kept blocks: exp(-30) ~ 1e-13, nothing


def locate(u: Tensor, resolution: int, block: int, block_index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Row block ``[N]`` (-1: empty or outside the cube), cell within the block ``[N, 3]`` (x, y, z)
    and position within the cell ``[N, 3]`` in [0, 1) of field points ``u [N, 3]``."""
    # Index arithmetic in floats: CPUs vectorise float floors, not 64-bit integer division, and
    # int64 row arithmetic slowed baked videos (docs/bake.md). Exact while ids stay below 2^24, which
    # BakeConfig ensures (at most 1024 cells across, groups of 4: 256^3 ids).
    pos = ((u + 1.0) * (0.5 * resolution)).clamp(0.0, resolution - 1e-3)
    cell = pos.floor()
    frac = pos - cell
    blk = (cell * (1.0 / block)).floor()
    nb = resolution // block
    bid = block_index[((blk[:, 2] * nb + blk[:, 1]) * nb + blk[:, 0]).long()]
    outside = ((u < -1.0) | (u >= 1.0)).any(-1)
    return torch.where(outside, torch.full_like(bid, -1), bid), (cell - blk * block).long(), frac


def corners(u: Tensor, resolution: int, block: int, block_index: Tensor,
            corner_offsets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Lattice rows ``[N, 8]`` and trilinear weights ``[N, 8]`` of the corners of the cells of
    ``u [N, 3]``, and the row blocks ``[N]`` (rows of points outside kept blocks are meaningless)."""
    bid, local, frac = locate(u, resolution, block, block_index)
    side = block + 1
    base = bid.clamp_min(0).long() * side**3 + (local[:, 2] * side + local[:, 1]) * side + local[:, 0]
    fz, fy, fx = frac[:, 2:3], frac[:, 1:2], frac[:, 0:1]
    wz = torch.cat([1 - fz, fz], -1)[:, :, None, None]
    wy = torch.cat([1 - fy, fy], -1)[:, None, :, None]
    wx = torch.cat([1 - fx, fx], -1)[:, None, None, :]
    return base[:, None] + corner_offsets[None], (wz * wy * wx).reshape(-1, 8), bid


def occupied_cells(x: Tensor, centre: Tensor, half: Tensor, contracted: bool, resolution: int, block: int,
                   block_index: Tensor, cells: Tensor) -> tuple[Tensor, Tensor]:
    """World points ``x [N, 3]`` -> field coordinates ``[N, 3]`` and ``[N]`` bool: the point's
    cell may hold visible density (the space map fused with the lookup)."""
    u = box_to_field(x, centre, half, contracted)
    bid, local, _ = locate(u, resolution, block, block_index)
    found = cells[bid.clamp_min(0).long() * block**3 + (local[:, 2] * block + local[:, 1]) * block + local[:, 0]]
    return u, found & (bid >= 0)


def occupied_groups(x: Tensor, centre: Tensor, half: Tensor, contracted: bool, resolution: int, group: int,
                    groups: Tensor) -> Tensor:
    """``[N]`` bool: world points ``x [N, 3]`` lie in marked cell groups (``groups``: dense bool
    over the cube, ``group^3`` cells each, z-major)."""
    u = box_to_field(x, centre, half, contracted)
    return groups[block_ids(u, resolution, group)] & ~((u < -1.0) | (u >= 1.0)).any(-1)


_corners = maybe_compile(corners)
_occupied_cells = maybe_compile(occupied_cells)
_occupied_groups = maybe_compile(occupied_groups)


class BlockLattice(nn.Module):
    """Raw density ``[N]`` and features ``[N, F]`` at field points ``u [N, 3]``, trilinear in kept blocks.

    Args:
        resolution: cells per axis of the cube (a multiple of ``block``).
        block: cells per block edge.
        block_index: ``[nb^3]`` int32, row block of each block (z-major, x fastest) or -1 (empty).
        density: ``[K * (block + 1)^3]`` raw density of the kept blocks' lattice points.
        features: ``[K * (block + 1)^3, F]`` geometry features at the same points (kept in float16:
            half the memory and a faster gather, for errors far below what a colour head shows);
            ``F = 0`` for a density-only lattice.
        cells: ``[K * block^3]`` bool, cells that may hold visible density (samplers skip the rest).
        group: cells per edge of the groups that samplers step through.
        groups: ``[(resolution / group)^3]`` bool (z-major): groups with an occupied cell, grown by
            one group (so a step of up to two groups whose midpoint misses them crosses none).

    A coarser level is derived on load: ``coarse_groups`` marks the ``coarse^3``-group cubes that
    hold a marked group, grown by one cube, for a first pass of steps ``coarse`` times longer.
    """

    def __init__(self, resolution: int, block: int, block_index: Tensor, density: Tensor, features: Tensor,
                 cells: Tensor, group: int, groups: Tensor):
        super().__init__()
        self.resolution, self.block = int(resolution), int(block)
        self.blocks = self.resolution // self.block
        self.register_buffer("block_index", block_index.int())
        self.register_buffer("density", density.float().reshape(-1, 1))
        self.register_buffer("features", features.half())
        self.register_buffer("cells", cells.bool().reshape(-1))
        self.group = int(group)
        self.register_buffer("groups", groups.bool().reshape(-1))
        per_axis = self.resolution // self.group
        self.coarse = next(f for f in (4, 2, 1) if per_axis % f == 0)
        dense = F.max_pool3d(self.groups.reshape((1, 1) + (per_axis,) * 3).float(), self.coarse)[0, 0] > 0
        self.register_buffer("coarse_groups", dilate(dense, 1).reshape(-1), persistent=False)
        side = self.block + 1
        bits = torch.tensor([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)])  # corner (dz, dy, dx)
        self.register_buffer("corner_offsets", (bits[:, 0] * side + bits[:, 1]) * side + bits[:, 2], persistent=False)

    @property
    def kept_blocks(self) -> int:
        return int((self.block_index >= 0).sum())

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size()
                   for t in (self.block_index, self.density, self.features, self.cells, self.groups))

    def occupied_groups(self, x: Tensor, space) -> Tensor:
        """``[N]`` bool: world points ``x [N, 3]`` (mapped by the box ``space``) lie in marked groups."""
        return _occupied_groups(x, space.box_centre, space.box_half, space.unbounded, self.resolution, self.group,
                                self.groups)

    def occupied_cells(self, x: Tensor, space) -> tuple[Tensor, Tensor]:
        """Field coordinates ``[N, 3]`` of world points ``x [N, 3]`` and ``[N]`` bool: their cells may show."""
        return _occupied_cells(x, space.box_centre, space.box_half, space.unbounded, self.resolution, self.block,
                               self.block_index, self.cells)

    def raw_density(self, u: Tensor) -> Tensor:
        """Raw (pre-activation) density ``[N]`` at field points ``u [N, 3]``; ``EMPTY_RAW`` outside kept blocks."""
        rows, weights, bid = _corners(u, self.resolution, self.block, self.block_index, self.corner_offsets)
        raw = F.embedding_bag(rows, self.density, per_sample_weights=weights, mode="sum")[:, 0]
        return torch.where(bid >= 0, raw, torch.full_like(raw, EMPTY_RAW))

    def lookup(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """Raw density ``[N]`` and features ``[N, F]`` (zero features outside kept blocks)."""
        rows, weights, bid = _corners(u, self.resolution, self.block, self.block_index, self.corner_offsets)
        raw = F.embedding_bag(rows, self.density, per_sample_weights=weights, mode="sum")[:, 0]
        if self.features.shape[1]:
            feats = F.embedding_bag(rows, self.features, per_sample_weights=weights.half(), mode="sum").float()
        else:  # a density-only lattice (features come from the live field)
            feats = raw.new_zeros(len(raw), 0)
        kept = bid >= 0
        return torch.where(kept, raw, torch.full_like(raw, EMPTY_RAW)), feats * kept[:, None]

    def state(self) -> dict:
        """Plain tensors for the bake file."""
        return {"resolution": self.resolution, "block": self.block, "block_index": self.block_index.cpu(),
                "density": self.density[:, 0].cpu(), "features": self.features.cpu(), "cells": self.cells.cpu(),
                "group": self.group, "groups": self.groups.cpu()}

    @staticmethod
    def from_state(state: dict) -> "BlockLattice":
        return BlockLattice(state["resolution"], state["block"], state["block_index"], state["density"],
                            state["features"], state["cells"], state["group"], state["groups"])


def block_ids(u: Tensor, resolution: int, block: int) -> Tensor:
    """Linear block id ``[N]`` (z-major, x fastest) of field points ``u [N, 3]``, clamped into the cube."""
    nb = resolution // block
    blk = ((((u + 1.0) * (0.5 * resolution)).clamp(0.0, resolution - 1e-3).floor()) * (1.0 / block)).floor()
    return ((blk[:, 2] * nb + blk[:, 1]) * nb + blk[:, 0]).long()


def lattice_points(ids: Tensor, resolution: int, block: int) -> Tensor:
    """Field coordinates ``[K * (block + 1)^3, 3]`` of the lattice points of blocks ``ids [K]``
    (linear ids, z-major), in the row order :class:`BlockLattice` reads."""
    nb, side = resolution // block, block + 1
    r = torch.arange(side, device=ids.device)
    local = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3).flip(-1)  # (x, y, z), x fastest
    origin = torch.stack([ids % nb, (ids // nb) % nb, ids // (nb * nb)], -1) * block
    return (origin[:, None, :] + local[None]).reshape(-1, 3).float() * (2.0 / resolution) - 1.0


def cell_groups(cells: Tensor, block_index: Tensor, resolution: int, block: int, group: int) -> Tensor:
    """``[(resolution / group)^3]`` bool (z-major): groups of ``group^3`` cells holding an occupied
    cell of ``cells [K * block^3]``, grown by one group."""
    nb, per = resolution // block, block // group
    dense = torch.zeros(nb**3, per, per, per, dtype=torch.bool, device=cells.device)
    kept = (block_index >= 0).nonzero()[:, 0]
    occupied = cells.reshape(-1, per, group, per, group, per, group).any(2).any(3).any(4)  # [K, per, per, per]
    dense[kept] = occupied[block_index[kept].long()]
    # [bz, by, bx, gz, gy, gx] -> [z, y, x] over the cube
    dense = dense.reshape(nb, nb, nb, per, per, per).permute(0, 3, 1, 4, 2, 5).reshape((nb * per,) * 3)
    return dilate(dense, 1).reshape(-1)


def dilate(mask: Tensor, blocks: int = 1) -> Tensor:
    """``[n, n, n]`` bool grown by ``blocks`` in every direction (26-neighbourhood)."""
    if blocks <= 0:
        return mask
    k = 2 * blocks + 1
    return F.max_pool3d(mask[None, None].float(), k, 1, blocks)[0, 0] > 0
