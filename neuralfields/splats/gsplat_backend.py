"""The ``gsplat`` rasteriser backend: gsplat's CUDA kernels behind :func:`~.rasterize.rasterize`.

gsplat is optional (``pip install gsplat``; its kernels need CUDA) and imported only when a
render asks for it. Its ``rasterization`` takes the same activated Gaussians, the OpenCV
world-to-camera matrix and ``K``, evaluates the SH colour the same way (``+ 0.5``, clamped at 0)
and composites with the same rule, except that it caps alpha at 0.999 where 3DGS caps it at 0.99.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor

from .rasterize import BACKENDS, Backend, RasterOutput, RasterSettings
from .scene import Gaussians


def gsplat_available(device: torch.device) -> bool:
    return device.type == "cuda" and importlib.util.find_spec("gsplat") is not None


def render_gsplat(g: Gaussians, viewmat: Tensor, K: Tensor, width: int, height: int, background: Tensor,
                  s: RasterSettings, depth: bool = False) -> RasterOutput:
    from gsplat import rasterization

    image, alpha, meta = rasterization(g.means, g.quats, g.scales, g.opacities, g.sh, viewmat[None], K[None], width,
                                       height, near_plane=s.near, far_plane=s.far, eps2d=s.eps2d, sh_degree=g.degree,
                                       packed=False, backgrounds=background[None],
                                       render_mode="RGB+D" if depth else "RGB")  # depth: a last channel over 0
    means2d = meta["means2d"]  # [1, N, 2]
    if means2d.requires_grad:
        means2d.retain_grad()
    radii = meta["radii"][0]
    if radii.dim() == 2:  # newer gsplat: a radius per axis
        radii = radii.max(-1).values
    return RasterOutput(image[0, ..., :3], alpha[0, ..., 0], means2d, radii, image[0, ..., 3] if depth else None)


BACKENDS.register("gsplat", Backend(render_gsplat, gsplat_available))
