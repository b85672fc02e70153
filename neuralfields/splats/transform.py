"""Moving a Gaussian scene by a similarity ``x -> s R x + t`` (into a splat viewer's frame, say).

Means move, scales grow by ``s``, rotations compose with ``R``, and the view-dependent colour
turns with the scene: each SH band ``l`` of a rotated scene holds ``D_l c`` where ``D_l`` maps
the band's basis at ``R^T d`` to the basis at ``d``. ``D_l`` is solved by least squares on a few
directions (exact: a band is closed under rotation), which saves writing out Wigner matrices.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..camera_paths.rotations import matrix_to_quaternion
from ..encodings import SphericalHarmonics
from .scene import GaussianScene


def split_similarity(matrix) -> tuple[Tensor, float, Tensor]:
    """``[4, 4]`` (or ``[3, 4]``) similarity -> rotation ``[3, 3]``, scale, translation ``[3]`` (float64)."""
    m = torch.as_tensor(np.asarray(matrix), dtype=torch.float64)
    linear = m[:3, :3]
    scale = float(torch.linalg.det(linear)) ** (1 / 3)
    rotation = linear / scale
    if scale <= 0 or not torch.allclose(rotation @ rotation.T, torch.eye(3, dtype=torch.float64), atol=1e-5):
        raise ValueError("not a similarity transform (scale times a proper rotation)")
    return rotation, scale, m[:3, 3]


def _quaternion(rotation: Tensor) -> Tensor:
    """``[4]`` (w, x, y, z) of a proper rotation matrix."""
    return torch.as_tensor(matrix_to_quaternion(rotation.numpy())[0])


def _multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product ``a [4] * b [N, 4]`` (w, x, y, z): the rotation ``b``, then ``a``."""
    aw, av = a[0], a[1:]
    bw, bv = b[:, :1], b[:, 1:]
    w = aw * bw - (bv * av).sum(-1, keepdim=True)
    v = aw * bv + bw * av + torch.linalg.cross(av.expand_as(bv), bv, dim=-1)
    return torch.cat([w, v], -1)


def sh_rotation(rotation: Tensor, degree: int) -> Tensor:
    """``[K, K]`` block-diagonal ``D`` with ``c' = D c`` for coefficients ``c [K]`` of bands up to ``degree``."""
    k = (degree + 1) ** 2
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(4 * k, 3, generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    basis = SphericalHarmonics(degree + 1)
    at, turned = basis(dirs), basis(dirs @ rotation)  # rows: Y(d) and Y(R^T d)
    out = torch.zeros(k, k, dtype=torch.float64)
    for band in range(degree + 1):
        sl = slice(band * band, (band + 1) ** 2)
        # Y_band(R^T d) = Y_band(d) @ M, and the colour c . Y(R^T d) = (M c) . Y(d).
        out[sl, sl] = torch.linalg.lstsq(at[:, sl], turned[:, sl]).solution
    return out


def transform_scene(scene: GaussianScene, matrix) -> GaussianScene:
    """A new scene: ``scene`` moved by the similarity ``matrix`` (``[4, 4]``, world -> new frame)."""
    rotation, scale, shift = split_similarity(matrix)
    with torch.no_grad():
        means = (scene.means.double() @ rotation.T * scale + shift).float()
        log_scales = scene.log_scales + math.log(scale)
        quats = _multiply(_quaternion(rotation), scene.quats.double()).float()
        d = sh_rotation(rotation, scene.max_degree).float().to(scene.means.device)
        sh = torch.einsum("jk,nkc->njc", d, scene.sh)
        return GaussianScene(means, log_scales, quats, scene.opacity_logits.detach().clone(), sh,
                             int(scene.active_degree))
