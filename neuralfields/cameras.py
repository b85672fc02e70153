"""Cameras and ray generation.

Pose convention (the one place it is defined): camera-to-world matrices follow Blender/OpenGL,
as NeRF-synthetic, D-NeRF and instant-ngp ``transforms.json`` store them. In camera space
x points right, y points up and the camera looks along -z. Pixel (u, v) has its origin at the
top-left corner of the image, v grows downwards, and pixel centres sit at half-integers.

Intrinsics follow OpenCV (fx, fy, cx, cy in pixels) with the radial/tangential distortion
model k1, k2, p1, p2 applied to normalised image coordinates.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Cameras:
    """A batch of pinhole cameras.

    Attributes:
        c2w: ``[N, 3, 4]`` camera-to-world (OpenGL convention, see module docstring).
        fx, fy, cx, cy: ``[N]`` intrinsics in pixels.
        width, height: ``[N]`` image size in pixels (int64).
        distortion: ``[N, 4]`` OpenCV ``k1, k2, p1, p2``; zeros for an ideal pinhole.
    """

    c2w: Tensor
    fx: Tensor
    fy: Tensor
    cx: Tensor
    cy: Tensor
    width: Tensor
    height: Tensor
    distortion: Tensor

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def __getitem__(self, index) -> "Cameras":
        """Select cameras; an int keeps the batch dimension."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(*(getattr(self, f)[index] for f in self._fields()))

    @staticmethod
    def _fields() -> tuple[str, ...]:
        return ("c2w", "fx", "fy", "cx", "cy", "width", "height", "distortion")

    def to(self, device) -> "Cameras":
        """The cameras on ``device``; cameras on the host read their distortion flag there first,
        so the moved ones never ask the device."""
        moved = Cameras(*(getattr(self, f).to(device) for f in self._fields()))
        if self.distortion.device.type == "cpu":
            moved.__dict__["has_distortion"] = self.has_distortion
        return moved

    @functools.cached_property
    def has_distortion(self) -> bool:
        """Whether any camera has lens distortion (read once per instance: a host read of the device)."""
        return bool((self.distortion != 0).any())

    @staticmethod
    def create(c2w, fx, fy, cx, cy, width, height, distortion=None) -> "Cameras":
        """Build cameras from arrays or scalars, broadcasting scalars over ``c2w``'s batch."""
        c2w = torch.as_tensor(c2w, dtype=torch.float32)
        if c2w.ndim == 2:
            c2w = c2w[None]
        c2w = c2w[:, :3, :4].contiguous()
        n = c2w.shape[0]

        def vec(v, dtype=torch.float32):
            return torch.as_tensor(v, dtype=dtype).reshape(-1).expand(n).clone()

        dist = torch.zeros(n, 4) if distortion is None else torch.as_tensor(distortion, dtype=torch.float32)
        return Cameras(
            c2w, vec(fx), vec(fy), vec(cx), vec(cy),
            vec(width, torch.int64), vec(height, torch.int64), dist.reshape(-1, 4).expand(n, 4).clone(),
        )

    def resized(self, width: int, height: int) -> "Cameras":
        """Cameras for images resized to ``width`` x ``height`` (all cameras share the new size)."""
        sx, sy = width / self.width.float(), height / self.height.float()
        n = len(self)
        w = torch.full((n,), width, dtype=torch.int64)
        h = torch.full((n,), height, dtype=torch.int64)
        return Cameras(self.c2w, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, w, h, self.distortion)

    def rays(self, cam_idx: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Rays through pixel coordinates.

        Args:
            cam_idx: ``[R]`` camera index per ray.
            u, v: ``[R]`` pixel coordinates (float; pass ``x + 0.5`` for pixel centres).
        Returns:
            origins ``[R, 3]`` and unit directions ``[R, 3]`` in world space.
        """
        xn = (u - self.cx[cam_idx]) / self.fx[cam_idx]
        yn = (v - self.cy[cam_idx]) / self.fy[cam_idx]
        if self.has_distortion:
            xn, yn = undistort(xn, yn, self.distortion[cam_idx])
        dirs_cam = torch.stack([xn, -yn, -torch.ones_like(xn)], dim=-1)  # OpenCV -> OpenGL axes
        c2w = self.c2w[cam_idx]
        dirs = torch.einsum("rij,rj->ri", c2w[:, :, :3], dirs_cam)
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
        return c2w[:, :, 3].expand_as(dirs).contiguous(), dirs

    def pixel_rays(self, index: int, pixels: Tensor) -> tuple[Tensor, Tensor]:
        """Rays through the centres of pixels ``[R]`` (row-major flat indices) of camera ``index``:
        origins and unit directions ``[R, 3]`` on the pixels' device."""
        w = self.width[index]  # a tensor: reading it into Python would wait for the device
        idx = torch.full_like(pixels, index)
        return self.rays(idx, (pixels % w).float() + 0.5, (pixels // w).float() + 0.5)

    def image_rays(self, index: int) -> tuple[Tensor, Tensor]:
        """All pixel-centre rays of camera ``index``: origins and directions ``[H, W, 3]``."""
        w, h = int(self.width[index]), int(self.height[index])
        o, d = self.pixel_rays(index, torch.arange(h * w, device=self.c2w.device))
        return o.reshape(h, w, 3), d.reshape(h, w, 3)


def distort(x: Tensor, y: Tensor, coeffs: Tensor) -> tuple[Tensor, Tensor]:
    """Apply OpenCV radial/tangential distortion to normalised coordinates ``[R]``; ``coeffs`` ``[R, 4]``."""
    k1, k2, p1, p2 = coeffs.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def undistort(xd: Tensor, yd: Tensor, coeffs: Tensor, iterations: int = 10) -> tuple[Tensor, Tensor]:
    """Invert :func:`distort` by Newton's method (the model has no closed-form inverse)."""
    k1, k2, p1, p2 = coeffs.unbind(-1)
    x, y = xd.clone(), yd.clone()
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2 * r2
        d_radial = 2 * k1 + 4 * k2 * r2  # d(radial)/d(r2) * 2
        fx = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xd
        fy = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - yd
        # Jacobian of the distorted point with respect to (x, y).
        j11 = radial + x * x * d_radial + 2 * p1 * y + 6 * p2 * x
        j12 = x * y * d_radial + 2 * p1 * x + 2 * p2 * y
        j21 = x * y * d_radial + 2 * p1 * x + 2 * p2 * y
        j22 = radial + y * y * d_radial + 6 * p1 * y + 2 * p2 * x
        det = j11 * j22 - j12 * j21
        det = torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
        x = x - (j22 * fx - j12 * fy) / det
        y = y - (-j21 * fx + j11 * fy) / det
    return x, y


def look_at(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """Camera-to-world ``[..., 3, 4]`` for cameras at ``eye`` ``[..., 3]`` looking at ``target``."""
    eye, target, up = (torch.as_tensor(a, dtype=torch.float32) for a in (eye, target, up))
    forward = target - eye
    forward = forward / forward.norm(dim=-1, keepdim=True)
    right = torch.linalg.cross(forward, up.expand_as(forward), dim=-1)
    right = right / right.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    true_up = torch.linalg.cross(right, forward, dim=-1)
    # Columns: camera x (right), y (up), z (backwards, since the camera looks along -z), origin.
    return torch.stack([right, true_up, -forward, eye], dim=-1)


def fov_to_focal(fov_radians: float, size: float) -> float:
    """Focal length in pixels for a field of view spanning ``size`` pixels."""
    import math

    return 0.5 * size / math.tan(0.5 * fov_radians)
