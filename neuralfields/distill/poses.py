"""Distillation cameras drawn from the distribution of the teacher's training poses.

The teacher renders any view, so the student need not see only the training views: each step
draws fresh cameras around the scene (as PVD does), with the intrinsics of a random training
camera. Samplers (``distill.poses.sampler``):

- ``shell`` (object-centric captures): positions uniform in *area* on the spherical zone between
  the lowest and highest training elevation (widened by ``elevation_margin_deg``), at a distance
  drawn between the nearest and farthest training camera (widened by ``radius_margin``), all
  azimuths; every camera looks at the estimated scene centre with the scene's up vector;
- ``interpolate`` (forward-facing captures, where views behind the scene would show unseen
  space): a random point between two random training poses, positions linear and rotations
  spherically interpolated, as PVD does for LLFF;
- ``training``: the training poses themselves (for ablations);
- ``auto``: ``interpolate`` when the training azimuths cover less than half a turn, else ``shell``.

Centre, up, elevations and the forward-facing test come from
:func:`neuralfields.camera_paths.estimate_scene_frame`. Random numbers come from torch's generator,
so a resumed run continues the same sequence.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..camera_paths import SceneFrame, estimate_scene_frame, matrix_to_quaternion, quaternion_to_matrix, slerp
from ..cameras import Cameras, look_at
from ..errors import NeuralFieldsError
from ..render.rays import RayBatch
from .config import PoseConfig

MAX_ELEVATION = math.radians(89.0)  # look_at degenerates when the view direction is parallel to up


def cat_cameras(parts: list[Cameras]) -> Cameras:
    """Concatenate camera batches."""
    return Cameras(*(torch.cat([getattr(c, f) for c in parts]) for f in Cameras._fields()))


def with_poses(cameras: Cameras, index: Tensor, c2w: Tensor) -> Cameras:
    """Cameras with the intrinsics of ``cameras[index]`` (``[N]``) and new poses ``c2w [N, 3, 4]``."""
    picked = Cameras(*(getattr(cameras, f)[index] for f in Cameras._fields()))
    picked.c2w = c2w.to(torch.float32).contiguous()
    return picked


def _uniform(n: int, low: float, high: float) -> np.ndarray:
    return (low + (high - low) * torch.rand(n, dtype=torch.float64)).numpy()


def _look_at_centre(frame: SceneFrame, positions: np.ndarray) -> Tensor:
    target = torch.as_tensor(np.broadcast_to(frame.centre, positions.shape).copy())
    return look_at(torch.as_tensor(positions), target, torch.as_tensor(frame.up))


class PoseSampler:
    """Draws ``Cameras`` (and times for dynamic scenes) around a trained scene.

    Args:
        cameras: the teacher's training cameras (``SceneInfo.cameras``).
        aabb: ``[2, 3]`` scene box (fallback centre for forward-facing captures).
        times: ``[N]`` training times of a dynamic scene, else None.
        cfg: sampler settings.
    """

    def __init__(self, cameras: Cameras, aabb: Tensor, times: Tensor | None, cfg: PoseConfig):
        if len(cameras) == 0:
            raise NeuralFieldsError("the teacher has no training cameras to draw distillation poses from")
        self.cameras, self.times, self.cfg = cameras, times, cfg
        self.frame = estimate_scene_frame(cameras, aabb)
        origins = cameras.c2w[:, :, 3].double().numpy()
        dist = np.linalg.norm(origins - self.frame.centre, axis=-1)
        m = cfg.radius_margin
        self.radius_range = (float(dist.min()) * (1 - m), float(dist.max()) * (1 + m))
        margin = math.radians(cfg.elevation_margin_deg)
        lo = max(-MAX_ELEVATION, float(self.frame.elevations.min()) - margin)
        hi = min(MAX_ELEVATION, float(self.frame.elevations.max()) + margin)
        self.elevation_range = (lo, hi)
        kind = cfg.sampler
        if kind == "auto":
            kind = "interpolate" if self.frame.forward_facing or len(cameras) < 2 else "shell"
        if kind not in POSE_SAMPLERS:
            raise NeuralFieldsError(f"distill.poses.sampler: unknown '{cfg.sampler}'; available: auto, {', '.join(POSE_SAMPLERS)}")
        self.kind = kind

    @property
    def centre(self) -> np.ndarray:
        return self.frame.centre

    def draw(self, n: int) -> tuple[Cameras, Tensor | None]:
        """``n`` cameras: a ``train_view_fraction`` share of training poses, the rest from the sampler."""
        n_train = int(round(n * self.cfg.train_view_fraction))
        parts, times = [], []
        if n_train:
            idx = torch.randint(0, len(self.cameras), (n_train,))
            parts.append(with_poses(self.cameras, idx, self.cameras.c2w[idx]))
            times.append(idx)
        if n - n_train:
            idx = torch.randint(0, len(self.cameras), (n - n_train,))  # whose intrinsics (and time) to use
            parts.append(with_poses(self.cameras, idx, POSE_SAMPLERS[self.kind](self, n - n_train)))
            times.append(idx)
        idx = torch.cat(times)
        return cat_cameras(parts), (None if self.times is None else self.times[idx].float())

    def jitter(self, cameras: Cameras, rotation_deg: float, radius: float) -> Cameras:
        """The same cameras moved rigidly about the scene centre by a small random rotation
        (angle ~ N(0, ``rotation_deg``)) and distance change (relative, ~ N(0, ``radius``))."""
        n = len(cameras)
        axis = torch.randn(n, 3, dtype=torch.float64)
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        angle = torch.randn(n, dtype=torch.float64) * math.radians(rotation_deg)
        rot = rodrigues(axis, angle)  # [n, 3, 3]
        centre = torch.as_tensor(self.centre)
        c2w = cameras.c2w.double()
        scale = (1.0 + radius * torch.randn(n, 1, dtype=torch.float64)).clamp_min(0.5)
        pos = centre + scale * torch.einsum("nij,nj->ni", rot, c2w[:, :, 3] - centre)
        new = torch.cat([rot @ c2w[:, :, :3], pos[:, :, None]], dim=-1)
        out = Cameras(*(getattr(cameras, f) for f in Cameras._fields()))
        out.c2w = new.float()
        return out


def rodrigues(axis: Tensor, angle: Tensor) -> Tensor:
    """Rotations ``[N, 3, 3]`` about unit axes ``[N, 3]`` by ``angle [N]`` radians."""
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([torch.stack([zero, -z, y], -1), torch.stack([z, zero, -x], -1), torch.stack([-y, x, zero], -1)], 1)
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    return torch.eye(3, dtype=axis.dtype) + s * k + (1 - c) * (k @ k)


def _shell(sampler: PoseSampler, n: int) -> Tensor:
    frame = sampler.frame
    if frame.forward_facing:
        mid, half = frame.azimuth_span()
        azimuth = _uniform(n, mid - half, mid + half)
    else:
        azimuth = _uniform(n, 0.0, 2 * math.pi)
    lo, hi = sampler.elevation_range
    elevation = np.arcsin(_uniform(n, math.sin(lo), math.sin(hi)))  # uniform in area on the zone
    radius = _uniform(n, *sampler.radius_range)
    return _look_at_centre(frame, frame.position(azimuth, elevation, radius))


def _interpolate(sampler: PoseSampler, n: int) -> Tensor:
    c2w = sampler.cameras.c2w.double().numpy()
    k = len(c2w)
    i = torch.randint(0, k, (n,)).numpy()
    j = (i + torch.randint(1, max(k, 2), (n,)).numpy()) % k  # a different pose when there is one
    u = torch.rand(n, dtype=torch.float64).numpy()
    quats = matrix_to_quaternion(c2w[:, :, :3])
    rot = quaternion_to_matrix(slerp(quats[i], quats[j], u))
    pos = c2w[i, :, 3] * (1 - u[:, None]) + c2w[j, :, 3] * u[:, None]
    return torch.as_tensor(np.concatenate([rot, pos[:, :, None]], -1))


def _training(sampler: PoseSampler, n: int) -> Tensor:
    return sampler.cameras.c2w[torch.randint(0, len(sampler.cameras), (n,))].double()


# name -> draw(sampler, n) -> c2w [n, 3, 4]
POSE_SAMPLERS: dict[str, Callable[[PoseSampler, int], Tensor]] = {
    "shell": _shell,
    "interpolate": _interpolate,
    "training": _training,
}


def rays_from_cameras(cameras: Cameras, times: Tensor | None, n_rays: int) -> tuple[RayBatch, Tensor]:
    """``n_rays`` rays through uniformly random (sub-pixel) positions of uniformly chosen cameras,
    on the cameras' device, and the camera of each ray ``[R]`` (index into ``cameras``)."""
    device = cameras.c2w.device
    cam = torch.randint(0, len(cameras), (n_rays,), device=device)
    u = torch.rand(n_rays, device=device) * cameras.width[cam].float()
    v = torch.rand(n_rays, device=device) * cameras.height[cam].float()
    origins, dirs = cameras.rays(cam, u, v)
    return RayBatch(origins, dirs, None if times is None else times.to(device)[cam]), cam
