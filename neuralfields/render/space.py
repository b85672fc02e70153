"""World space -> field space: the coordinate map applied before any field sees a point.

Fields take points in ``[-1, 1]^3``. :class:`SceneBox` maps the scene box affinely onto that
cube; other maps (a contraction of unbounded space, say) register beside it and plug into the
renderer the same way. Normals and other world-space derivatives go through autograd over the
map, so a map needs only ``forward``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import Registry

SPACES: Registry[type] = Registry("coordinate space")


@SPACES.register("box")
class SceneBox(nn.Module):
    """Affine map of the box ``aabb [2, 3]`` onto ``[-1, 1]^3``."""

    def __init__(self, aabb: Tensor):
        super().__init__()
        aabb = torch.as_tensor(aabb, dtype=torch.float32).reshape(2, 3)
        self.register_buffer("aabb", aabb.clone(), persistent=False)
        self.register_buffer("box_centre", (aabb[0] + aabb[1]) / 2, persistent=False)
        self.register_buffer("box_half", (aabb[1] - aabb[0]) / 2, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """World points ``[N, 3]`` -> field coordinates ``[N, 3]``."""
        return (x - self.box_centre) / self.box_half
