"""Where along a ray samplers may place samples, and a normalised distance to space them by.

The coordinate space decides both (:mod:`neuralfields.render.space`): bounded spaces clip rays
to the scene box and space samples evenly; contracted spaces run rays from ``near`` to ``far``
inner-box half sizes, with a normalised distance ``s`` that is linear up to one half size from
the camera and linear in disparity beyond, so the contracted background gets as many samples as
the near scene (mip-NeRF 360); NDC runs rays from the reference camera's near plane to ``far``
half sizes deep, linear in NDC depth. Near the scene a step in ``s`` is about the same step in
field coordinates, which is what lets samplers size steps to a grid over the field cube.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..rays import RayBatch


class RaySpan(nn.Module):
    """Ray ranges and the distance map ``s in [0, 1] -> t`` of one coordinate space.

    Args:
        space: the world -> field map (its ``aabb`` is the inner box of unbounded spaces).
        aabb: ``[2, 3]`` the box bounded rays are clipped to.
        near: rays start this far from the camera; far: unbounded rays end this many half sizes away.
    """

    def __init__(self, space, aabb: Tensor, near: float = 0.0, far: float = 1000.0):
        super().__init__()
        self.unbounded = bool(space.unbounded)
        self.space = space
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32).reshape(2, 3).clone(), persistent=False)
        inner = space.aabb if self.unbounded else self.aabb
        self.half = float((inner[1] - inner[0]).mean()) / 2
        self.diagonal = float((inner[1] - inner[0]).norm())
        self.near, self.far = float(near), float(far)

    def ray_range(self, rays: RayBatch) -> tuple[Tensor, Tensor]:
        """Near and far distances ``[R]`` (rays that miss a bounded box get an empty range)."""
        return self.space.ray_range(rays.origins, rays.dirs, self.near, self.far * self.half, self.aabb)

    def to_distance(self, s: Tensor, near: Tensor, far: Tensor) -> Tensor:
        """Normalised distances ``s [R, K]`` in [0, 1] -> distances along the rays ``[R, K]``."""
        return self.space.to_distance(s, near[:, None], far[:, None], self.far * self.half)
