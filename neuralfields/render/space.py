"""World space -> field space: the coordinate map applied before any field sees a point, and the
distance along a ray that samplers space their samples by.

Fields take points in ``[-1, 1]^3``. :class:`SceneBox` maps the scene box affinely onto that
cube (objects); :class:`ContractedBox` keeps an inner box as it is and squeezes the rest of
space into a shell around it (unbounded captures, mip-NeRF 360's contraction with the
L-infinity norm, so that grid fields cover the whole world); :class:`NDCSpace` maps the frustum
of a forward-facing capture, from a near plane to infinity, onto the cube by NeRF's normalised
device coordinates (NDC) of one reference camera. Normals and other world-space derivatives go
through autograd over the map, so a map needs only ``forward``; ``inverse`` lets samplers that
keep state in field space (an occupancy grid over contracted space) query points.
``unbounded`` tells samplers whether rays end at the box or run to infinity.

Each space also says where along a ray samples may lie (``ray_range``) and how a normalised
distance ``s in [0, 1]`` maps to distances between those ends (``to_distance``): linear in a
box, linear then in disparity in contracted space, linear in NDC depth (disparity of the
reference camera) in NDC. :class:`~neuralfields.render.samplers.span.RaySpan` asks them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import NeuralFieldsError
from ..registry import Registry
from .marching import ray_aabb

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
    """A space built on the scene box ``aabb [2, 3]``; ``ndc`` is the forward-facing reference
    camera (:class:`NDCFrame`) that only :class:`NDCSpace` reads.

    ``field_scale``: how many times larger than the scene box the field's cube is, in field units
    (a contraction gives the box half of the cube: grid fields double their resolution to keep
    the detail per unit length); ``fused``: the map is :func:`box_to_field` of ``box_centre`` and
    ``box_half`` (a bake's compiled kernels inline it)."""

    field_scale = 1.0
    fused = True

    def __init__(self, aabb: Tensor, ndc: "NDCFrame | None" = None):
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

    def contains(self, x: Tensor) -> Tensor:
        """``[N]`` bool: world points ``x [N, 3]`` the field covers (inside the box)."""
        return ((x - self.box_centre).abs() <= self.box_half).all(-1)

    def ray_range(self, origins: Tensor, dirs: Tensor, near: float, far: float, clip: Tensor) -> tuple[Tensor, Tensor]:
        """Where rays ``[R, 3]`` may hold samples: ``(t0, t1)`` ``[R]``, the stretch inside the box
        ``clip [2, 3]`` beyond ``near`` (``t1 <= t0`` for a ray that misses it); ``far`` is unused."""
        t0, t1 = ray_aabb(origins, dirs, clip)
        t0 = t0.clamp_min(near)
        return t0, torch.maximum(t1, t0)

    def to_distance(self, s: Tensor, t0: Tensor, t1: Tensor, far: float) -> Tensor:
        """Normalised distances ``s [R, K]`` in [0, 1] -> distances ``[R, K]`` between ``t0`` and
        ``t1`` ``[R, 1]`` (from :meth:`ray_range` with the same ``far``): evenly spaced."""
        return t0 + s * (t1 - t0)


@SPACES.register("contract")
class ContractedBox(_Box):
    """The inner box ``aabb [2, 3]`` maps affinely onto ``[-1/2, 1/2]^3``; all space outside it is
    contracted (:func:`contract`) into the shell up to ``[-1, 1]^3``, reaching it at infinity."""

    unbounded = True
    field_scale = 2.0

    def __init__(self, aabb: Tensor, ndc: "NDCFrame | None" = None):
        super().__init__(aabb, ndc)
        self.half = float(self.box_half.mean())

    def forward(self, x: Tensor) -> Tensor:
        return box_to_field(x, self.box_centre, self.box_half, True)

    def inverse(self, u: Tensor) -> Tensor:
        return uncontract(u * 2.0) * self.box_half + self.box_centre

    def contains(self, x: Tensor) -> Tensor:
        """``[N]`` bool: every world point is in contracted space."""
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)

    def ray_range(self, origins: Tensor, dirs: Tensor, near: float, far: float, clip: Tensor) -> tuple[Tensor, Tensor]:
        """Every ray runs from ``near`` to ``far`` (distances; ``clip`` is unused)."""
        t0 = torch.full((origins.shape[0],), float(near), device=origins.device)
        return t0, torch.full_like(t0, float(far))

    def _spacing(self, r: Tensor) -> Tensor:
        return torch.where(r < 1, r / 2, 1 - 1 / (2 * r.clamp_min(1e-6)))

    def _spacing_inverse(self, v: Tensor) -> Tensor:
        return torch.where(v < 0.5, 2 * v, 1 / (2 * (1 - v).clamp_min(1e-6)))

    def to_distance(self, s: Tensor, t0: Tensor, t1: Tensor, far: float) -> Tensor:
        """Normalised distances ``s [R, K]`` -> distances ``[R, K]``: linear up to one inner-box half
        size from the camera and linear in disparity beyond (mip-NeRF 360), so the contracted
        background gets as many samples as the near scene."""
        g0, g1 = self._spacing(t0 / self.half), self._spacing(t1 / self.half)
        return self._spacing_inverse(g0 + s * (g1 - g0)) * self.half


# --------------------------------------------------------------------------------------- NDC

# The NDC box covers the training frustums in x and y with this much room to spare, for novel
# views a little beside the training cameras.
NDC_MARGIN = 1.05


@dataclass
class NDCFrame:
    """The reference camera of forward-facing NDC (NeRF's ``ndc_rays``, with the average pose).

    Attributes:
        c2w: ``[3, 4]`` reference camera-to-world (OpenGL: x right, y up, looking along -z).
        scale: ``[2]`` NDC x and y per unit of ``-x/z`` and ``-y/z`` in the reference camera
            (NeRF's ``2 f / W`` and ``2 f / H``, here sized so that every training frustum fits
            ``[-1, 1]`` with :data:`NDC_MARGIN` to spare).
        near: depth of the near plane (``z = -near`` in the reference camera): NDC depth 0.
    """

    c2w: Tensor
    scale: Tensor
    near: float

    def state_dict(self) -> dict:
        return {"c2w": self.c2w, "scale": self.scale, "near": self.near}

    @staticmethod
    def from_state(state: dict | None) -> "NDCFrame | None":
        if state is None:
            return None
        return NDCFrame(state["c2w"].cpu().float(), state["scale"].cpu().float(), float(state["near"]))


def average_pose(c2w: Tensor) -> Tensor:
    """``[3, 4]`` mean of camera-to-world matrices ``[N, 3|4, 4]`` (NeRF's ``poses_avg``): the mean
    centre, the normalised mean backward axis and the mean up made orthogonal to it. Float64."""
    c2w = c2w.double()[:, :3, :4]
    back = torch.nn.functional.normalize(c2w[:, :, 2].sum(0), dim=0)
    right = torch.nn.functional.normalize(torch.linalg.cross(c2w[:, :, 1].sum(0), back), dim=0)
    up = torch.linalg.cross(back, right)
    return torch.stack([right, up, back, c2w[:, :, 3].mean(0)], 1)


def ndc_frame(c2w: Tensor, corner_dirs: Tensor, near: float, nearest: float | None = None,
              margin: float = NDC_MARGIN) -> NDCFrame | None:
    """The NDC frame of forward-facing cameras, or None when NDC cannot hold what they see.

    Args:
        c2w: ``[N, 3|4, 4]`` camera-to-world of the training cameras.
        corner_dirs: ``[N, 4, 3]`` world directions through the four image corners of each camera.
        near: depth of the near plane in front of the average camera.
        nearest: the nearest depth anything the cameras see lies at (default ``near``).
    Returns:
        The frame whose x/y scale fits the training frustums, from depth ``nearest`` to infinity,
        into ``[-1, 1]`` with ``margin`` to spare; None when a camera stands on or in front of
        the near plane or a corner ray does not run away from it (it would leave the frustum
        NDC covers).
    """
    ref = average_pose(c2w)
    rot, centre = ref[:, :3], ref[:, 3]
    nearest = max(float(nearest if nearest is not None else near), float(near))
    origins = (c2w.double()[:, :3, 3] - centre) @ rot  # [N, 3] in the reference camera
    dirs = corner_dirs.double() @ rot  # [N, 4, 3]
    w0, dw = -origins[:, None, 2], -dirs[..., 2]  # depth at the camera and per unit along each corner ray
    if near <= 0 or (w0 >= near).any() or (dw <= 1e-6).any():
        return None
    # A frustum corner's NDC x and y change monotonically along it (the map is projective): its
    # extremes are at the nearest depth and at infinity.
    at_nearest = origins[:, None, :2] + dirs[..., :2] * ((nearest - w0) / dw)[..., None]
    extent = torch.cat([(at_nearest / nearest).abs().reshape(-1, 2), (dirs[..., :2] / dw[..., None]).abs().reshape(-1, 2)])
    scale = 1.0 / (extent.amax(0) * margin)
    return NDCFrame(ref.float(), scale.float(), float(near))


@SPACES.register("ndc")
class NDCSpace(_Box):
    """Forward-facing captures: NeRF's normalised device coordinates of a reference camera.

    A world point ``x`` at depth ``w`` in front of the reference camera (``p = (x, y, -w)`` in its
    axes) maps to ``(a_x x / w, a_y y / w, 1 - 2 near / w)``: the near plane goes to ``-1``,
    infinity to ``+1``, and the frustum the training cameras see to ``[-1, 1]^3``. The map is
    projective, so rays stay straight lines, and uniform steps in NDC depth are uniform steps in
    the reference camera's disparity: as many samples for the background as for the near scene,
    and the field's cells grow with distance as the pixels' footprints do. Points in front
    of the near plane or behind the camera land outside the cube.

    Args:
        aabb: ``[2, 3]`` the scene box (samplers size their steps and the far end of rays by it).
        ndc: the reference camera; required.
    """

    unbounded = True
    fused = False

    def __init__(self, aabb: Tensor, ndc: NDCFrame | None = None):
        super().__init__(aabb, ndc)
        if ndc is None:
            raise NeuralFieldsError("render.space=ndc: the scene is not a forward-facing capture with near bounds "
                                    "(LLFF poses_bounds.npy or COLMAP points, every camera looking the same way); "
                                    "use render.space=contract or box")
        self.register_buffer("ref_rotation", ndc.c2w[:, :3].float().clone(), persistent=False)
        self.register_buffer("ref_centre", ndc.c2w[:, 3].float().clone(), persistent=False)
        self.register_buffer("scale", ndc.scale.float().clone(), persistent=False)
        self.near = float(ndc.near)
        self.half = float(self.box_half.mean())

    def camera_points(self, x: Tensor) -> Tensor:
        """World points ``[N, 3]`` in the reference camera's axes ``[N, 3]``."""
        return (x - self.ref_centre) @ self.ref_rotation

    def forward(self, x: Tensor) -> Tensor:
        """World points ``[N, 3]`` -> NDC ``[N, 3]`` (points closer than a thousandth of the near
        plane, or behind the camera, are pushed far outside the cube instead of dividing by 0)."""
        p = self.camera_points(x)
        w = (-p[:, 2:]).clamp_min(1e-3 * self.near)
        return torch.cat([p[:, :2] * self.scale / w, 1.0 - 2.0 * self.near / w], -1)

    def inverse(self, u: Tensor) -> Tensor:
        """NDC ``[N, 3]`` with ``u_z < 1`` -> world points (``u_z`` is clamped just below 1, infinity)."""
        w = 2.0 * self.near / (1.0 - u[:, 2:]).clamp_min(1e-6)
        p = torch.cat([u[:, :2] * w / self.scale, -w], -1)
        return p @ self.ref_rotation.T + self.ref_centre

    def contains(self, x: Tensor) -> Tensor:
        """``[N]`` bool: world points ``x [N, 3]`` inside the frustum NDC covers (beyond the near plane)."""
        p = self.camera_points(x)
        w = -p[:, 2]
        return (w >= self.near) & ((p[:, :2] * self.scale).abs() <= w[:, None]).all(-1)

    def depths(self, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        """Depth in front of the reference camera at the ray origins ``[R]`` and its change per unit
        distance along the rays ``[R]``: the depth at ``t`` is ``w0 + t dw``."""
        back = self.ref_rotation[:, 2]
        return -((origins - self.ref_centre) @ back), -(dirs @ back)

    def ray_range(self, origins: Tensor, dirs: Tensor, near: float, far: float, clip: Tensor) -> tuple[Tensor, Tensor]:
        """From the near plane (NDC depth 0) to depth ``far`` (NDC depth just below 1), NeRF's rays
        shifted to the near plane; rays that do not run away from the reference camera are empty.
        A ray of a camera in front of the near plane starts at the camera (``near``, ``clip``: unused)."""
        w0, dw = self.depths(origins, dirs)
        ahead = dw > 1e-6
        step = torch.where(ahead, dw, torch.ones_like(dw))
        t0 = ((self.near - w0) / step).clamp_min(0.0)
        t1 = torch.where(ahead, ((self.far_depth(far) - w0) / step).clamp_min(0.0), t0)
        return torch.where(ahead, t0, torch.zeros_like(t0)), torch.maximum(t1, t0)

    def to_distance(self, s: Tensor, t0: Tensor, t1: Tensor, far: float) -> Tensor:
        """Normalised distances ``s [R, K]`` -> distances ``[R, K]`` linear in the reference camera's
        disparity (NDC depth) between ``t0`` at the near plane and ``t1`` at depth ``far``. Depth is
        affine along a ray, so with ``ratio`` = far depth / near depth the fraction of the way from
        ``t0`` to ``t1`` is ``s / (s + (1 - s) ratio)``."""
        ratio = self.far_depth(far) / self.near
        return t0 + (t1 - t0) * (s / (s + (1.0 - s) * ratio))

    def far_depth(self, far: float) -> float:
        """The depth where rays end: ``far``, and at least twice the near plane's."""
        return max(float(far), 2.0 * self.near)


def space_for(name: str, kind: str) -> str:
    """The space a run uses: ``name`` unless it is ``auto``, which picks it from the scene ``kind``:
    ``box`` for objects, ``contract`` for unbounded captures, ``ndc`` for forward-facing ones."""
    if name == "auto":
        return AUTO_SPACE.get(kind, "box")
    if name not in SPACES:
        raise NeuralFieldsError(f"render.space: unknown value '{name}'; expected auto, {', '.join(SPACES)}")
    return name


def space_name(space: nn.Module) -> str:
    """The registered name of a space module (``box``, ``contract``, ``ndc``)."""
    return next(name for name, cls in SPACES.items() if type(space) is cls)


# ``render.space = "auto"``: the space of each scene kind (``Scene.kind``).
AUTO_SPACE = {"object": "box", "unbounded": "contract", "forward": "ndc"}
