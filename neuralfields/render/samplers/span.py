"""Where along a ray samplers may place samples, and a normalised distance to space them by.

Bounded spaces clip rays to the scene box. Unbounded (contracted) spaces run rays from ``near``
to ``far`` inner-box half sizes, and space samples in a normalised distance ``s`` that is linear
up to one half size from the camera and linear in disparity beyond, so the contracted background
gets as many samples as the near scene (mip-NeRF 360). Near the scene's centre a step in ``s`` is
about the same step in field coordinates, which is what lets samplers size steps to a grid over
the field cube.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..marching import ray_aabb
from ..rays import RayBatch


class RaySpan(nn.Module):
    """Ray ranges and the distance map ``s in [0, 1] -> t`` of one coordinate space.

    Args:
        space: the world -> field map (its ``aabb`` is the inner box of contracted spaces).
        aabb: ``[2, 3]`` the box bounded rays are clipped to.
        near: rays start this far from the camera; far: unbounded rays end this many half sizes away.
    """

    def __init__(self, space, aabb: Tensor, near: float = 0.0, far: float = 1000.0):
        super().__init__()
        self.unbounded = bool(space.unbounded)
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32).reshape(2, 3).clone(), persistent=False)
        inner = space.aabb if self.unbounded else self.aabb
        self.half = float((inner[1] - inner[0]).mean()) / 2
        self.diagonal = float((inner[1] - inner[0]).norm())
        self.near, self.far = float(near), float(far)

    def _spacing(self, r: Tensor) -> Tensor:
        return torch.where(r < 1, r / 2, 1 - 1 / (2 * r.clamp_min(1e-6))) if self.unbounded else r

    def _spacing_inverse(self, v: Tensor) -> Tensor:
        return torch.where(v < 0.5, 2 * v, 1 / (2 * (1 - v).clamp_min(1e-6))) if self.unbounded else v

    def ray_range(self, rays: RayBatch) -> tuple[Tensor, Tensor]:
        """Near and far distances ``[R]`` (rays that miss a bounded box get an empty range)."""
        if self.unbounded:
            near = torch.full((len(rays),), self.near, device=rays.device)
            return near, torch.full_like(near, self.far * self.half)
        t0, t1 = ray_aabb(rays.origins, rays.dirs, self.aabb)
        t0 = t0.clamp_min(self.near)
        return t0, torch.maximum(t1, t0)

    def to_distance(self, s: Tensor, near: Tensor, far: Tensor) -> Tensor:
        """Normalised distances ``s [R, K]`` in [0, 1] -> distances along the rays ``[R, K]``."""
        g0, g1 = self._spacing(near / self.half)[:, None], self._spacing(far / self.half)[:, None]
        return self._spacing_inverse(g0 + s * (g1 - g0)) * self.half
