"""World space -> field space: the coordinate map applied before any field sees a point.

Fields take points in ``[-1, 1]^3``. :class:`SceneBox` maps the scene box affinely onto that
cube (objects); :class:`ContractedBox` keeps an inner box as it is and squeezes the rest of
space into a shell around it (unbounded captures, mip-NeRF 360's contraction with the
L-infinity norm, so that grid fields cover the whole world). Normals and other world-space
derivatives go through autograd over the map, so a map needs only ``forward``; ``inverse`` lets
samplers that keep state in field space (an occupancy grid over contracted space) query points.
``unbounded`` tells samplers whether rays end at the box or run to infinity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import Registry

SPACES: Registry[type] = Registry("coordinate space")


def contract(x: Tensor) -> Tensor:
    """L-infinity scene contraction of ``x [..., 3]``: the identity where ``|x|_inf <= 1``, else
    ``(2 - 1 / |x|_inf) x / |x|_inf``. Every point lands in ``[-2, 2]^3``; infinity on the boundary."""
    norm = x.abs().amax(-1, keepdim=True)
    safe = norm.clamp_min(1.0)  # avoids dividing by tiny norms on the branch that is not used
    return torch.where(norm <= 1.0, x, (2.0 - 1.0 / safe) * (x / safe))


def uncontract(y: Tensor) -> Tensor:
    """Inverse of :func:`contract` for ``y [..., 3]`` with ``|y|_inf < 2``."""
    norm = y.abs().amax(-1, keepdim=True)
    safe = norm.clamp(1.0, 2.0 - 1e-6)
    return torch.where(norm <= 1.0, y, y / (safe * (2.0 - safe)))


def box_to_field(x: Tensor, centre: Tensor, half: Tensor, contracted: bool) -> Tensor:
    """World points ``x [N, 3]`` -> field coordinates of a box (``centre``, ``half`` ``[3]``), contracted
    or not: the maps of :class:`SceneBox` and :class:`ContractedBox` as one free function (fused
    into callers' compiled hot paths)."""
    u = (x - centre) / half
    return contract(u) * 0.5 if contracted else u


class _Box(nn.Module):
    def __init__(self, aabb: Tensor):
        super().__init__()
        aabb = torch.as_tensor(aabb, dtype=torch.float32).reshape(2, 3)
        self.register_buffer("aabb", aabb.clone(), persistent=False)
        self.register_buffer("box_centre", (aabb[0] + aabb[1]) / 2, persistent=False)
        self.register_buffer("box_half", (aabb[1] - aabb[0]) / 2, persistent=False)


@SPACES.register("box")
class SceneBox(_Box):
    """Affine map of the box ``aabb [2, 3]`` onto ``[-1, 1]^3``."""

    unbounded = False

    def forward(self, x: Tensor) -> Tensor:
        """World points ``[N, 3]`` -> field coordinates ``[N, 3]``."""
        return box_to_field(x, self.box_centre, self.box_half, False)

    def inverse(self, u: Tensor) -> Tensor:
        return u * self.box_half + self.box_centre


@SPACES.register("contract")
class ContractedBox(_Box):
    """The inner box ``aabb [2, 3]`` maps affinely onto ``[-1/2, 1/2]^3``; all space outside it is
    contracted (:func:`contract`) into the shell up to ``[-1, 1]^3``, reaching it at infinity."""

    unbounded = True

    def forward(self, x: Tensor) -> Tensor:
        return box_to_field(x, self.box_centre, self.box_half, True)

    def inverse(self, u: Tensor) -> Tensor:
        return uncontract(u * 2.0) * self.box_half + self.box_centre


def space_for(name: str, kind: str) -> str:
    """The space a run uses: ``name`` unless it is ``auto``, which contracts unbounded scenes."""
    if name != "auto":
        return name
    return "contract" if kind == "unbounded" else "box"
