"""Factorised plane features (tri-planes, K-Planes, HexPlane) and dense grids.

``PlaneEncoding`` keeps one learnable 2D feature plane per pair of input axes (``(x,y), (x,z),
(y,z)`` for 3D points; for ``(x, y, z, t)`` also ``(x,t), (y,t), (z,t)``) at several resolutions.
A point's feature at one resolution is the Hadamard product of its bilinear samples on all
planes (K-Planes), and resolutions are concatenated. Planes over a time axis start at 1 so
that, multiplied in, they leave the spatial product unchanged until trained.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sample_plane(plane: Tensor, uv: Tensor) -> Tensor:
    """Bilinear samples ``[N, C]`` of ``plane [C, H, W]`` at ``uv [N, 2]`` in ``[-1, 1]`` (u along W)."""
    grid = uv.reshape(1, -1, 1, 2)
    return F.grid_sample(plane[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0, :, :, 0].t()


class PlaneEncoding(nn.Module):
    """``x [N, D]`` in ``[-1, 1]^D`` -> ``[N, n_features * len(resolutions)]``.

    Args:
        in_dim: input dimensions (2, 3, or 4 with time last).
        n_features: channels per plane.
        resolutions: plane sizes; a time axis uses ``time_resolution`` instead.
        time_dims: indices of axes that are time (their planes initialise to 1).
        reduce: ``product`` (K-Planes) or ``sum`` (EG3D-style tri-planes).
    """

    def __init__(self, in_dim: int = 3, n_features: int = 16, resolutions: tuple[int, ...] = (64, 128),
                 time_dims: tuple[int, ...] = (), time_resolution: int = 25, reduce: str = "product",
                 init_range: tuple[float, float] = (0.1, 0.5)):
        super().__init__()
        if reduce not in ("product", "sum"):
            raise ValueError("reduce must be 'product' or 'sum'")
        self.in_dim, self.n_features, self.reduce = in_dim, n_features, reduce
        self.pairs = list(itertools.combinations(range(in_dim), 2)) if in_dim > 1 else [(0, 0)]
        self.time_dims = tuple(time_dims)
        self.resolutions = tuple(resolutions)
        self.out_dim = n_features * len(resolutions)
        self.planes = nn.ParameterList()
        for res in resolutions:
            for a, b in self.pairs:
                size = [time_resolution if d in self.time_dims else res for d in (b, a)]  # [H (axis b), W (axis a)]
                if a in self.time_dims or b in self.time_dims:
                    init = torch.ones(n_features, *size)
                else:
                    init = torch.empty(n_features, *size).uniform_(*init_range)
                self.planes.append(nn.Parameter(init))

    def forward(self, x: Tensor) -> Tensor:
        outputs = []
        k = 0
        for _ in self.resolutions:
            acc = None
            for a, b in self.pairs:
                f = sample_plane(self.planes[k], x[:, [a, b]])
                k += 1
                acc = f if acc is None else (acc * f if self.reduce == "product" else acc + f)
            outputs.append(acc)
        return torch.cat(outputs, dim=-1)

    def spatial_planes(self) -> list[Tensor]:
        return [p for p, (a, b) in zip(self.planes, itertools.cycle(self.pairs))
                if a not in self.time_dims and b not in self.time_dims]

    def temporal_planes(self) -> list[Tensor]:
        return [p for p, (a, b) in zip(self.planes, itertools.cycle(self.pairs))
                if a in self.time_dims or b in self.time_dims]


def total_variation(plane: Tensor) -> Tensor:
    """Mean squared difference of neighbouring cells along both axes of ``[C, H, W]``."""
    dh = (plane[:, 1:, :] - plane[:, :-1, :]).pow(2).mean()
    dw = (plane[:, :, 1:] - plane[:, :, :-1]).pow(2).mean()
    return dh + dw


def temporal_smoothness(plane: Tensor) -> Tensor:
    """Second difference along the time axis (rows, ``H``) of a space-time plane ``[C, T, W]``."""
    if plane.shape[1] < 3:
        return plane.new_zeros(())
    return (plane[:, 2:, :] - 2 * plane[:, 1:-1, :] + plane[:, :-2, :]).pow(2).mean()
