"""Truncated signed distance fusion of rendered depth maps (pure PyTorch), then marching cubes.

Each voxel centre ``p`` is projected into every view; with the rendered ray distance ``D`` of
the pixel it lands on and its own distance ``r = |p - o|`` from the camera, the projective
signed distance is ``s = D - r`` (positive in front of the surface). Where ``s > -trunc`` the
voxel takes ``clamp(s / trunc, -1, 1)`` into a running weighted mean. Pixels the model renders
as empty (opacity below ``opacity_threshold``) count as free space (``s = +trunc``), which
carves away floaters that no view supports. A free-space update needs the nearest depth of the
3x3 pixel neighbourhood to agree, so silhouette rounding cannot carve the inside of an object. Voxels never observed keep weight 0 and are
excluded from the level set, so unseen regions (e.g. the underside of an object on a table)
stay open instead of producing spurious walls.

The views are training-like: the run's training cameras (``views`` of them spread evenly, at
``1/downscale`` of the training size, by default about one pixel per voxel), rendered from the
model itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import Cameras
from ..errors import NeuralFieldsError
from .views import render_views, training_views
from .volume import Volume, grid_shape, marching_cubes


@dataclass
class TSDFConfig:
    views: int | None = 50  # training cameras fused (spread evenly); None = all
    downscale: float | None = None  # render at 1/downscale of the training size; None: about one pixel per voxel
    truncation: float = 3.0  # in voxels
    opacity_threshold: float = 0.5  # pixels below count as empty
    carve: bool = True  # empty pixels mark the voxels in front of the camera as free
    chunk: int = 1 << 20  # voxels per projection batch


class TSDFVolume:
    """A dense TSDF over ``box [2, 3]`` with ``shape`` samples (voxel centres) spaced ``voxel`` apart."""

    def __init__(self, origin: Tensor, shape: tuple[int, int, int], voxel: float, truncation: float):
        self.origin, self.shape, self.voxel, self.trunc = origin.float(), shape, float(voxel), float(truncation)
        n = shape[0] * shape[1] * shape[2]
        self.tsdf = torch.ones(n)
        self.weight = torch.zeros(n)

    def points(self, flat: Tensor) -> Tensor:
        """World positions ``[C, 3]`` of flat voxel indices (x slowest, z fastest)."""
        nx, ny, nz = self.shape
        ijk = torch.stack([flat // (ny * nz), (flat // nz) % ny, flat % nz], -1).float()
        return self.origin + ijk * self.voxel

    @torch.no_grad()
    def integrate(self, depth: Tensor, valid: Tensor, cameras: Cameras, index: int, carve: bool = True,
                  chunk: int = 1 << 20) -> None:
        """Fuse one depth map ``[H, W]`` (ray distance) with its ``valid [H, W]`` mask from ``cameras[index]``."""
        c2w = cameras.c2w[index]
        rot, origin = c2w[:, :3], c2w[:, 3]
        fx, fy, cx, cy = (float(getattr(cameras, k)[index]) for k in ("fx", "fy", "cx", "cy"))
        h, w = depth.shape
        # Empty pixels are infinitely far. A voxel counts as free space only if the nearest depth of
        # its pixel's 3x3 neighbourhood agrees: otherwise a voxel just inside an object's silhouette
        # that rounds to a background pixel would be carved.
        depth = torch.where(valid, depth, torch.full_like(depth, math.inf))
        nearest = -F.max_pool2d(-depth[None, None], 3, stride=1, padding=1)[0, 0]
        for flat in torch.arange(self.tsdf.shape[0]).split(chunk):
            p = self.points(flat)
            rel = p - origin
            cam = rel @ rot  # camera coordinates (x right, y up, looking along -z)
            z = -cam[:, 2]
            front = z > 1e-6
            zc = z.clamp_min(1e-6)
            u = cx + fx * cam[:, 0] / zc
            v = cy - fy * cam[:, 1] / zc
            inside = front & (u >= 0) & (u < w) & (v >= 0) & (v < h)
            if not inside.any():
                continue
            flat, rel, u, v = flat[inside], rel[inside], u[inside].long(), v[inside].long()
            dist = rel.norm(dim=-1)
            sdf = (depth[v, u] - dist).clamp_max(self.trunc)  # inf (empty pixel) -> free
            free = sdf >= self.trunc
            use = (sdf > -self.trunc) & ~(free & (nearest[v, u] - dist < self.trunc))
            if not carve:
                use &= torch.isfinite(depth[v, u])
            flat, sdf = flat[use], sdf[use]
            value = (sdf / self.trunc).clamp(-1, 1)
            wt = self.weight[flat]
            self.tsdf[flat] = (self.tsdf[flat] * wt + value) / (wt + 1)
            self.weight[flat] = wt + 1

    def surface(self) -> tuple[np.ndarray, np.ndarray]:
        """Zero level set between observed voxels only: ``verts [V, 3]``, ``faces [F, 3]``."""
        values = -self.tsdf.reshape(self.shape).numpy()  # matter positive, as marching_cubes expects
        seen = (self.weight > 0).reshape(self.shape).numpy()
        if not (values[seen] > 0).any() or not (values[seen] < 0).any():
            raise NeuralFieldsError("tsdf: no surface found in the fused depth (are the views empty? try --bbox)")
        return marching_cubes(Volume(values, self.origin.double().numpy(), self.voxel), 0.0, seen)


def tsdf_surface(model, cfg: TSDFConfig, box: Tensor, resolution: int, time: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """Fuse depth rendered at training-like views inside ``box``; returns verts, faces, voxel size."""
    shape, voxel = grid_shape(box, resolution)
    if cfg.truncation <= 0:
        raise NeuralFieldsError(f"tsdf truncation must be positive, got {cfg.truncation}")
    volume = TSDFVolume(box[0], shape, voxel, cfg.truncation * voxel)
    downscale = cfg.downscale
    if downscale is None:  # finer pixels than voxels add render time but no detail to the volume
        side = max(int(model.info.cameras.width[0]), int(model.info.cameras.height[0]))
        downscale = max(1.0, side / resolution)
    cams = training_views(model.info, cfg.views, downscale)
    for i, out in render_views(model, cams, time, ("depth", "opacity")):
        volume.integrate(out["depth"], out["opacity"] > cfg.opacity_threshold, cams, i, cfg.carve, cfg.chunk)
    verts, faces = volume.surface()
    return verts, faces, voxel
