"""Factorised plane features (tri-planes, K-Planes, HexPlane) and their regularisers.

``PlaneEncoding`` keeps one learnable 2D feature plane per pair of input axes (``(x,y), (x,z),
(y,z)`` for 3D points; for ``(x, y, z, t)`` also ``(x,t), (y,t), (z,t)``; a single ``(x,y)``
plane for 2D inputs) at several resolutions. A point's feature at one resolution is the
Hadamard product of its bilinear samples on all planes (K-Planes), and resolutions are
concatenated. Planes over a time axis start at 1 so that, multiplied in, they leave the spatial
product unchanged until trained.

The regularisers are the ones that make planes train well from few views:

- ``total_variation`` of space-only planes (smooth geometry, no floaters between cells);
- ``temporal_smoothness`` (second difference along time) of space-time planes (smooth motion);
- ``l1_to_one`` of space-time planes (K-Planes' "sparse transients": static parts stay static);
- ``l1`` of space-only planes (sparse features, TensoRF-style).
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
    """``x [N, D]`` -> ``[N, n_features * len(resolutions)]``: space axes in ``[-1, 1]``, time
    axes (``time_dims``) in ``[0, 1]``, as the renderer hands them.

    Args:
        in_dim: input dimensions (2, 3, or 4 with time last).
        n_features: channels per plane.
        resolutions: plane sizes; a time axis uses ``time_resolution`` instead.
        time_dims: indices of axes that are time, in ``[0, 1]`` (their planes initialise to 1).
        reduce: ``product`` (K-Planes) or ``sum`` (EG3D-style tri-planes).
        init_range: uniform initialisation of space-only planes (positive, so products start
            away from zero and every plane receives gradient).
    """

    def __init__(self, in_dim: int = 3, n_features: int = 16, resolutions: tuple[int, ...] = (64, 128),
                 time_dims: tuple[int, ...] = (), time_resolution: int = 25, reduce: str = "product",
                 init_range: tuple[float, float] = (0.1, 0.5)):
        super().__init__()
        if reduce not in ("product", "sum"):
            raise ValueError("reduce must be 'product' or 'sum'")
        if not resolutions or min(resolutions) < 2 or (time_dims and time_resolution < 2):
            raise ValueError("plane resolutions must be at least 2")
        self.in_dim, self.n_features, self.reduce = in_dim, n_features, reduce
        self.pairs = list(itertools.combinations(range(in_dim), 2)) if in_dim > 1 else [(0, 0)]
        self.time_dims = tuple(time_dims)
        # Which input axes are times (mapped from [0, 1] to the planes' [-1, 1] in forward).
        self.register_buffer("is_time", torch.tensor([d in self.time_dims for d in range(in_dim)]), persistent=False)
        self.resolutions = tuple(int(r) for r in resolutions)
        self.time_resolution = int(time_resolution)
        self.out_dim = n_features * len(self.resolutions)
        self.planes = nn.ParameterList()
        for res in self.resolutions:
            for a, b in self.pairs:
                size = [self.time_resolution if d in self.time_dims else res for d in (b, a)]  # [H (axis b), W (axis a)]
                if self._is_temporal((a, b)):
                    init = torch.ones(n_features, *size)
                else:
                    init = torch.empty(n_features, *size).uniform_(*init_range)
                self.planes.append(nn.Parameter(init))

    def _is_temporal(self, pair: tuple[int, int]) -> bool:
        return pair[0] in self.time_dims or pair[1] in self.time_dims

    def forward(self, x: Tensor) -> Tensor:
        if self.time_dims:
            x = torch.where(self.is_time, x * 2.0 - 1.0, x)
        uvs = [x[:, [a, b]] for a, b in self.pairs]  # gathered once, shared by all resolutions
        outputs = []
        k = 0
        for _ in self.resolutions:
            acc = None
            for uv in uvs:
                f = sample_plane(self.planes[k], uv)
                k += 1
                acc = f if acc is None else (acc * f if self.reduce == "product" else acc + f)
            outputs.append(acc)
        return torch.cat(outputs, dim=-1)

    def spatial_planes(self) -> list[Tensor]:
        return [p for p, pair in zip(self.planes, itertools.cycle(self.pairs)) if not self._is_temporal(pair)]

    def temporal_planes(self) -> list[Tensor]:
        """Space-time planes ``[C, T, W]``: time runs along rows (time is always the later axis)."""
        return [p for p, pair in zip(self.planes, itertools.cycle(self.pairs)) if self._is_temporal(pair)]

    def regularization(self, tv: float = 0.0, time_smoothness: float = 0.0, time_l1: float = 0.0,
                       l1: float = 0.0) -> Tensor | None:
        """Weighted sum of the plane regularisers (each averaged over its planes); None if all weights are 0."""
        spatial, temporal = self.spatial_planes(), self.temporal_planes()
        terms: list[Tensor] = []
        for weight, planes, fn in ((tv, spatial, total_variation), (l1, spatial, l1_norm),
                                   (time_smoothness, temporal, temporal_smoothness), (time_l1, temporal, l1_to_one)):
            if weight > 0 and planes:
                terms.append(weight * torch.stack([fn(p) for p in planes]).mean())
        return torch.stack(terms).sum() if terms else None


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


def l1_to_one(plane: Tensor) -> Tensor:
    """Mean ``|1 - plane|``: space-time planes that stay at 1 leave the spatial features static."""
    return (1.0 - plane).abs().mean()


def l1_norm(plane: Tensor) -> Tensor:
    """Mean ``|plane|``: sparse plane features."""
    return plane.abs().mean()
