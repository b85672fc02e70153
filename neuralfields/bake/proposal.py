"""Baked proposal networks: each small density field of a proposal sampler cached on a dense grid.

A run trained with proposal networks renders with them: they decide where the scene's field is
asked, and the field learned its density only there (elsewhere it is fog the live render never
sees). So a baked render of such a run keeps the proposal sampler, sample for sample, and only
makes it cheap: each proposal network (a hash grid and an MLP) becomes one trilinear lookup in a
dense grid of its raw density over the field cube, and the scene's field comes from the lattice.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ..compiling import maybe_compile
from ..encodings.hashgrid import finest_resolution


def dense_lookup(u: Tensor, raw: Tensor, n: int) -> Tensor:
    """``[N]`` trilinear blend of ``raw [n^3]`` (a dense grid of points spanning ``[-1, 1]^3``
    corner to corner, z-major, x fastest) at field points ``u [N, 3]``; points outside take the
    nearest face's values. Compiled, the eight gathers fuse into one loop (no ``[N, 8]`` rows)."""
    pos = ((u + 1.0) * (0.5 * (n - 1))).clamp(0.0, n - 1 - 1e-3)
    cell = pos.floor()
    f = pos - cell
    c = cell.long()  # row arithmetic in integers: float32 is exact only up to 2^24 (a 257^3 grid has more rows)
    base = (c[:, 2] * n + c[:, 1]) * n + c[:, 0]
    out = torch.zeros_like(f[:, 0])
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                w = ((f[:, 2] if dz else 1 - f[:, 2]) * (f[:, 1] if dy else 1 - f[:, 1])
                     * (f[:, 0] if dx else 1 - f[:, 0]))
                out = out + w * raw[base + (dz * n * n + dy * n + dx)]
    return out


_dense_lookup = maybe_compile(dense_lookup)


class DenseDensity(nn.Module):
    """Density ``[N]`` at field points ``u [N, 3]``: ``exp`` of a trilinear lookup in a dense grid of
    raw density ``raw [n, n, n]`` (z, y, x) whose points span ``[-1, 1]^3`` corner to corner (one
    compiled loop; ``grid_sample`` was slower on a CPU, docs/bake.md)."""

    def __init__(self, raw: Tensor):
        super().__init__()
        self.register_buffer("raw", raw.float().reshape(-1).contiguous())
        self.n = int(raw.shape[-1])

    @property
    def resolution(self) -> int:
        return self.n

    def forward(self, u: Tensor) -> Tensor:
        return torch.exp(_dense_lookup(u.float(), self.raw, self.n))


def grid_points(n: int, z: Tensor) -> Tensor:
    """Field coordinates ``[len(z) * n * n, 3]`` (x, y, z; x fastest) of the dense grid's points in
    the z-slices ``z [k]`` (integer indices)."""
    r = torch.linspace(-1.0, 1.0, n, device=z.device)
    zz, yy, xx = torch.meshgrid(r[z], r, r, indexing="ij")
    return torch.stack([xx, yy, zz], -1).reshape(-1, 3)


@torch.no_grad()
def bake_density(network: nn.Module, resolution: int = 0, points_per_batch: int = 1 << 20) -> Tensor:
    """``[n, n, n]`` raw density (z, y, x) of a proposal ``network`` (``encoding`` then ``mlp``, raw
    density in its first output) at a dense grid's points: ``resolution + 1`` per axis, its
    finest hash-grid resolution by default. Point values, not a max over neighbours: growing the
    grid by one point each way doubled the density everywhere and the proposals then spread
    their samples, while point values lose little (docs/bake.md)."""
    device = next(network.parameters()).device
    n = (resolution or finest_resolution(network)) + 1
    per = max(1, points_per_batch // (n * n))
    slices = []
    for start in range(0, n, per):
        z = torch.arange(start, min(start + per, n), device=device)
        slices.append(network.mlp(network.encoding(grid_points(n, z)))[:, 0].reshape(len(z), n, n))
    return torch.cat(slices)


def with_networks(sampler: nn.Module, networks: list[nn.Module]) -> nn.Module:
    """A shallow copy of a proposal ``sampler`` whose density networks are ``networks``."""
    baked = copy.copy(sampler)
    baked._modules = dict(sampler._modules)
    baked.networks = nn.ModuleList(networks)
    return baked
