"""Cameras for splats, and the EWA projection of 3D Gaussians to screen-space ellipses.

:class:`~neuralfields.cameras.Cameras` store camera-to-world matrices in the OpenGL convention
(the camera looks along -z, y up). Splat rasterisers (ours and gsplat) take the OpenCV
world-to-camera matrix (looking along +z, y down) and pinhole intrinsics ``K``: :func:`view_matrix`
and :func:`intrinsics` convert, so splats render the very views a field renders. Pixel centres
sit at half-integers in both conventions. Lens distortion is not modelled: splats render the
undistorted pinhole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..cameras import Cameras
from .scene import Gaussians, covariances

# OpenGL camera axes -> OpenCV camera axes: flip y and z.
_GL_TO_CV = (1.0, -1.0, -1.0)


def view_matrix(cameras: Cameras, index: int) -> Tensor:
    """``[4, 4]`` OpenCV world-to-camera matrix of camera ``index``."""
    c2w = cameras.c2w[index]
    rotation = c2w[:, :3] * c2w.new_tensor(_GL_TO_CV)  # columns: camera x, y, z axes in world space
    out = torch.eye(4, dtype=c2w.dtype, device=c2w.device)
    out[:3, :3] = rotation.T
    out[:3, 3] = -rotation.T @ c2w[:, 3]
    return out


def intrinsics(cameras: Cameras, index: int) -> Tensor:
    """``[3, 3]`` pinhole matrix ``K`` of camera ``index``."""
    k = torch.zeros(3, 3, dtype=cameras.fx.dtype, device=cameras.fx.device)
    k[0, 0], k[1, 1] = cameras.fx[index], cameras.fy[index]
    k[0, 2], k[1, 2] = cameras.cx[index], cameras.cy[index]
    k[2, 2] = 1
    return k


@dataclass
class Projected:
    """Gaussians on the screen of one camera (``N`` rows, culled ones included).

    Attributes:
        means2d: ``[N, 2]`` pixel coordinates (pixel ``(i, j)`` has its centre at ``(i + 0.5, j + 0.5)``).
        depths: ``[N]`` camera-space z.
        conics: ``[N, 3]`` inverse 2D covariance ``(a, b, c)``: ``sigma = a dx^2 / 2 + b dx dy + c dy^2 / 2``.
        cov2d: ``[N, 3]`` the 2D covariance ``(xx, xy, yy)`` (low-pass included).
        radii: ``[N]`` int, 3-sigma radius of the footprint in pixels; 0 where culled.
    """

    means2d: Tensor
    depths: Tensor
    conics: Tensor
    cov2d: Tensor
    radii: Tensor

    @property
    def visible(self) -> Tensor:
        return self.radii > 0


def project(g: Gaussians, viewmat: Tensor, K: Tensor, width: int, height: int, near: float = 0.01,
            far: float = 1e10, eps2d: float = 0.3) -> Projected:
    """EWA splatting of ``g`` into the camera ``viewmat [4, 4]`` (OpenCV w2c), ``K [3, 3]``.

    The 2D covariance is ``J W Sigma W^T J^T + eps2d I``: ``J`` the Jacobian of the perspective
    projection at the mean (its x/z and y/z clamped a little beyond the image, as 3DGS and gsplat
    do, so a Gaussian beside the frustum does not get an enormous footprint), ``eps2d`` the
    low-pass filter that keeps every footprint at least about a pixel wide. A Gaussian is culled
    outside ``(near, far)``, with a degenerate footprint, or when its 3-sigma box misses the image.
    """
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    p = g.means @ rot.T + trans
    x, y, z = p.unbind(-1)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    in_depth = (z > near) & (z < far)
    zs = torch.where(in_depth, z, torch.ones_like(z))  # culled rows must not divide by ~0
    # Clamp the point's direction to 30% of the field of view beyond the image edges (gsplat's limits).
    margin_x, margin_y = 0.3 * 0.5 * width / fx, 0.3 * 0.5 * height / fy
    tx = zs * (x / zs).clamp(-(cx / fx + margin_x), (width - cx) / fx + margin_x)
    ty = zs * (y / zs).clamp(-(cy / fy + margin_y), (height - cy) / fy + margin_y)
    zero = torch.zeros_like(zs)
    jac = torch.stack([fx / zs, zero, -fx * tx / (zs * zs), zero, fy / zs, -fy * ty / (zs * zs)], -1).reshape(-1, 2, 3)
    m = jac @ rot
    cov = m @ covariances(g.quats, g.scales) @ m.transpose(1, 2)
    a, b, c = cov[:, 0, 0] + eps2d, cov[:, 0, 1], cov[:, 1, 1] + eps2d
    det = a * c - b * b
    ok = in_depth & (det > 0)
    inv_det = 1 / torch.where(ok, det, torch.ones_like(det))
    conics = torch.stack([c * inv_det, -b * inv_det, a * inv_det], -1)
    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], -1)
    with torch.no_grad():
        mid = 0.5 * (a + c)
        lam = mid + (mid * mid - det).clamp_min(0.1).sqrt()
        radii = torch.ceil(3 * lam.clamp_min(0).sqrt())
        u, v = means2d.unbind(-1)
        on_screen = (u + radii > 0) & (u - radii < width) & (v + radii > 0) & (v - radii < height)
        radii = torch.where(ok & on_screen & (radii > 0), radii, torch.zeros_like(radii)).to(torch.int32)
    return Projected(means2d, z, conics, torch.stack([a, b, c], -1), radii)
