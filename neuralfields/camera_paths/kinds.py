"""Camera path kinds derived from the training cameras: orbit, spiral, interpolate.

Every path, generated here or read from a file by :mod:`.formats`, is a :class:`CameraPath`:
one :class:`~neuralfields.cameras.Cameras` entry per video frame plus an optional time per
frame for dynamic scenes.

The scene frame (:func:`estimate_scene_frame`) is what orbits turn around:

* centre: the least-squares point closest to all optical axes (object-centric captures point
  their cameras at the object); when the axes are nearly parallel (forward-facing captures) or
  the point lies behind most cameras, the centre of the scene box is used instead;
* up: the mean of the cameras' up vectors (capture rigs and hand-held photos keep the camera
  upright, so the sideways tilts cancel), snapped to a world axis when within 5 degrees of one;
* radius: the median camera distance to the centre; elevations and azimuths of the cameras in
  the frame spanned by ``up`` and the first camera's horizontal direction.

When the training azimuths cover less than half a turn the capture counts as forward-facing and
orbits sweep back and forth across the covered arc instead of going round.

New kinds register in :data:`PATH_KINDS` (a builder ``(frame, n_frames, settings, info) -> c2w``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..cameras import Cameras, look_at
from ..errors import NeuralFieldsError
from ..registry import Registry
from .rotations import interpolate_poses

MAX_SIDE = 8192  # pixels; larger frames are refused (frame buffers alone would take gigabytes)
SNAP_UP_DEG = 5.0  # an estimated up within this angle of a world axis becomes that axis


@dataclass
class PathSettings:
    """How long, how large and over which times a path is rendered; None means "derive it".

    ``width``/``height`` default to the training image size (divided by ``downscale``), ``fov``
    (vertical, degrees) to the training cameras' median, ``fps``/``seconds`` to a keyframe
    file's values or 30 fps / 4 s. ``time_range`` sweeps time linearly over the frames
    (``(t, t)`` holds it); dynamic runs sweep ``(0, 1)`` when it is None.
    """

    seconds: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    downscale: float | None = None
    fov: float | None = None
    time_range: tuple[float, float] | None = None
    turns: float = 1.0  # revolutions of orbit / spiral paths
    max_keyframes: int | None = None  # training poses an ``interpolate`` path passes through


DEFAULT_FPS = 30.0
DEFAULT_SECONDS = 4.0


@dataclass
class CameraPath:
    """A rendered-path description: ``cameras`` (one per frame), ``times [N]`` or None, ``fps``."""

    cameras: Cameras
    fps: float
    times: Tensor | None = None
    kind: str = ""

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def width(self) -> int:
        return int(self.cameras.width[0])

    @property
    def height(self) -> int:
        return int(self.cameras.height[0])

    def time(self, index: int) -> float | None:
        return None if self.times is None else float(self.times[index])

    def describe(self) -> dict:
        """JSON-ready summary (written beside rendered videos)."""
        out = {"kind": self.kind, "frames": len(self), "fps": self.fps, "width": self.width, "height": self.height}
        if self.times is not None:
            out["time_range"] = [float(self.times[0]), float(self.times[-1])]
        return out


# ------------------------------------------------------------------------------------ scene frame


@dataclass
class SceneFrame:
    """Where the training cameras look from: see the module docstring.

    Attributes:
        centre, up: ``[3]`` float64 numpy arrays; ``axis1``/``axis2`` complete a right-handed
            basis with ``up`` (``axis1`` points towards the first training camera).
        radius: median camera distance to ``centre``.
        azimuths, elevations: ``[N]`` radians of every training camera in this frame.
        forward_facing: the azimuths cover less than half a turn.
        fov: median vertical field of view in degrees; ``width``, ``height`` of camera 0.
    """

    centre: np.ndarray
    up: np.ndarray
    axis1: np.ndarray
    axis2: np.ndarray
    radius: float
    azimuths: np.ndarray
    elevations: np.ndarray
    forward_facing: bool
    fov: float
    width: int
    height: int

    def position(self, azimuth: np.ndarray, elevation: np.ndarray, radius: np.ndarray) -> np.ndarray:
        """World positions ``[N, 3]`` at spherical coordinates (radians) around the centre."""
        azimuth, elevation, radius = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (azimuth, elevation, radius))
        horizontal = np.cos(azimuth)[:, None] * self.axis1 + np.sin(azimuth)[:, None] * self.axis2
        direction = np.cos(elevation)[:, None] * horizontal + np.sin(elevation)[:, None] * self.up
        return self.centre + radius[:, None] * direction

    def azimuth_span(self) -> tuple[float, float]:
        """``(middle, half width)`` of the covered azimuth arc (for forward-facing captures)."""
        a = np.sort(np.mod(self.azimuths, 2 * math.pi))
        gaps = np.diff(np.concatenate([a, a[:1] + 2 * math.pi]))
        k = int(np.argmax(gaps))  # the arc starts after the largest gap
        start = a[(k + 1) % len(a)]
        width = 2 * math.pi - gaps[k]
        return start + width / 2, width / 2


def vertical_fov(cameras: Cameras) -> Tensor:
    """``[N]`` vertical field of view in degrees."""
    return torch.rad2deg(2 * torch.atan(cameras.height.float() / (2 * cameras.fy)))


def estimate_scene_frame(cameras: Cameras, aabb: Tensor | None = None) -> SceneFrame:
    """Centre, up, radius and camera angles of a capture (see the module docstring)."""
    c2w = cameras.c2w.double().numpy()
    origins = c2w[:, :, 3]
    forward = -c2w[:, :, 2]
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    n = len(origins)

    up = c2w[:, :, 1].mean(0)
    if np.linalg.norm(up) < 1e-6:  # cameras upside down in equal numbers: fall back to world z
        up = np.array([0.0, 0.0, 1.0])
    up /= np.linalg.norm(up)
    axis = np.argmax(np.abs(up))
    if abs(up[axis]) > math.cos(math.radians(SNAP_UP_DEG)):
        # Nearly a world axis: datasets are usually axis-aligned, and a slightly tilted orbit shows
        # a wobbling horizon, so take the axis itself.
        up = np.eye(3)[axis] * np.sign(up[axis])

    # Least squares: sum_i |(I - f f^T)(c - o_i)|^2 is minimal where A c = b.
    proj = np.eye(3)[None] - forward[:, :, None] * forward[:, None, :]
    a, b = proj.sum(0), (proj @ origins[:, :, None]).sum(0)[:, 0]
    eig = np.linalg.eigvalsh(a / n)
    centre = None
    if n >= 2 and eig[0] > 0.02:  # axes spread by more than ~8 degrees
        candidate = np.linalg.solve(a, b)
        if np.median(((candidate - origins) * forward).sum(-1)) > 0:
            centre = candidate
    if centre is None:
        centre = (aabb.double().numpy().mean(0) if aabb is not None
                  else origins.mean(0) + forward.mean(0) * np.linalg.norm(origins - origins.mean(0), axis=-1).max())

    offsets = origins - centre
    dist = np.linalg.norm(offsets, axis=-1)
    radius = float(np.median(dist)) if n else 1.0
    horizontal = offsets - (offsets @ up)[:, None] * up
    axis1 = horizontal[0] if np.linalg.norm(horizontal[0]) > 1e-6 else np.cross(up, [1.0, 0.0, 0.0])
    if np.linalg.norm(axis1) < 1e-6:
        axis1 = np.cross(up, [0.0, 1.0, 0.0])
    axis1 = axis1 / np.linalg.norm(axis1)
    axis2 = np.cross(up, axis1)
    azimuths = np.arctan2(horizontal @ axis2, horizontal @ axis1)
    elevations = np.arcsin(np.clip((offsets @ up) / np.maximum(dist, 1e-12), -1, 1))

    frame = SceneFrame(centre, up, axis1, axis2, radius, azimuths, elevations, False,
                       float(vertical_fov(cameras).median()), int(cameras.width[0]), int(cameras.height[0]))
    frame.forward_facing = n > 1 and 2 * frame.azimuth_span()[1] < math.pi
    return frame


# ------------------------------------------------------------------------------------ building paths


def frame_size(frame: SceneFrame, settings: PathSettings, default: tuple[int, int] | None = None) -> tuple[int, int]:
    """Output ``(width, height)`` from the settings, else ``default``, else the training size."""
    if settings.width is not None and settings.height is not None:
        w, h = settings.width, settings.height
    else:
        w, h = default or (frame.width, frame.height)
        if settings.downscale:
            w, h = max(1, round(w / settings.downscale)), max(1, round(h / settings.downscale))
    check_resolution(w, h)
    return int(w), int(h)


def check_resolution(width: int, height: int, where: str = "--resolution") -> None:
    if width < 1 or height < 1:
        raise NeuralFieldsError(f"{where}: resolution must be at least 1x1, got {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise NeuralFieldsError(f"{where}: {width}x{height} exceeds the {MAX_SIDE} pixel limit per side")


def cameras_from_poses(c2w: np.ndarray, fov_deg: np.ndarray | float, width: int, height: int) -> Cameras:
    """Pinhole cameras ``[N]`` with vertical field of view ``fov_deg`` (degrees), principal point centred."""
    c2w = torch.as_tensor(np.asarray(c2w), dtype=torch.float32)
    fov = torch.as_tensor(np.asarray(fov_deg, dtype=np.float64), dtype=torch.float32).reshape(-1).expand(c2w.shape[0])
    focal = 0.5 * height / torch.tan(torch.deg2rad(fov) / 2)
    return Cameras.create(c2w, focal, focal, width / 2, height / 2, width, height)


def _frame_count(settings: PathSettings, fps: float | None = None, seconds: float | None = None) -> tuple[int, float]:
    fps = settings.fps or fps or DEFAULT_FPS
    seconds = settings.seconds or seconds or DEFAULT_SECONDS
    return max(1, int(round(fps * seconds))), float(fps)


def _look_at_centre(frame: SceneFrame, positions: np.ndarray) -> np.ndarray:
    target = np.broadcast_to(frame.centre, positions.shape)
    return look_at(torch.as_tensor(positions), torch.as_tensor(target.copy()), torch.as_tensor(frame.up)).double().numpy()


def orbit_path(frame: SceneFrame, n_frames: int, turns: float = 1.0) -> np.ndarray:
    """``[N, 3, 4]``: a circle at the median training elevation and distance, looking at the centre.

    Starts at the first training camera's azimuth; forward-facing captures swing across the
    covered arc and back instead.
    """
    s = np.arange(n_frames) / n_frames
    if frame.forward_facing:
        mid, half = frame.azimuth_span()
        azimuth = mid + 0.8 * half * np.sin(2 * math.pi * turns * s)
    else:
        azimuth = frame.azimuths[0] + 2 * math.pi * turns * s
    elevation = np.full(n_frames, np.median(frame.elevations))
    return _look_at_centre(frame, frame.position(azimuth, elevation, np.full(n_frames, frame.radius)))


def spiral_path(frame: SceneFrame, n_frames: int, turns: float = 1.0) -> np.ndarray:
    """``[N, 3, 4]``: an orbit whose elevation rises and falls between the 10th and 90th percentile
    training elevations (twice per turn) while the distance dips to 80% and back.

    Forward-facing captures circle in the image plane instead (azimuth and elevation oscillate a
    quarter period apart), the classic LLFF spiral, at the cameras' own distance: moving in would
    leave the space the photos cover (and pass NDC's near plane, in front of which an NDC run
    renders nothing).
    """
    s = np.arange(n_frames) / n_frames
    lo, hi = np.percentile(frame.elevations, [10, 90])
    mid, amp = (lo + hi) / 2, max((hi - lo) / 2, math.radians(5))
    if frame.forward_facing:
        az_mid, half = frame.azimuth_span()
        azimuth = az_mid + 0.6 * half * np.cos(2 * math.pi * 2 * turns * s)
        elevation = mid + amp * np.sin(2 * math.pi * 2 * turns * s)
    else:
        azimuth = frame.azimuths[0] + 2 * math.pi * turns * s
        elevation = mid + amp * np.sin(2 * math.pi * 2 * turns * s)
    elevation = np.clip(elevation, -math.radians(85), math.radians(85))  # never look straight down the up axis
    dip = 0.0 if frame.forward_facing else 0.1
    radius = frame.radius * (1 - dip * (1 - np.cos(2 * math.pi * turns * s)))
    return _look_at_centre(frame, frame.position(azimuth, elevation, radius))


def tour_order(c2w: np.ndarray) -> list[int]:
    """Greedy nearest-neighbour tour of camera positions starting at camera 0.

    Training cameras are often stored in no spatial order (random, or a Fibonacci spiral);
    visiting them as stored would jump across the scene.
    """
    pos = np.asarray(c2w)[:, :3, 3]
    order, left = [0], set(range(1, len(pos)))
    while left:
        rest = np.array(sorted(left))
        nearest = int(rest[np.argmin(np.linalg.norm(pos[rest] - pos[order[-1]], axis=-1))])
        order.append(nearest)
        left.remove(nearest)
    return order


def interpolate_training_path(cameras: Cameras, n_frames: int, max_keyframes: int | None = None,
                              ) -> tuple[np.ndarray, list[int]]:
    """``[N, 3, 4]`` through training poses in tour order, and the camera indices used as keyframes.

    By default one keyframe per 15 frames (at most all cameras), spread evenly along the tour.
    """
    c2w = cameras.c2w.double().numpy()
    order = tour_order(c2w)
    k = max_keyframes or max(2, n_frames // 15)
    k = max(1, min(k, len(order)))
    picks = [order[int(round(i))] for i in np.linspace(0, len(order) - 1, k)] if k > 1 else [order[0]]
    poses, _, _ = interpolate_poses(c2w[picks], n_frames, closed=False)
    return poses, picks


def _training_frame(info) -> SceneFrame:
    return estimate_scene_frame(info.cameras, getattr(info, "aabb", None))


def _generated(kind: str, build: Callable[[SceneFrame, int, PathSettings, object], np.ndarray]):
    """Wrap a path builder ``(frame, n_frames, settings, info) -> c2w`` as a path-spec handler."""

    def make(info, settings: PathSettings) -> CameraPath:
        frame = _training_frame(info)
        n, fps = _frame_count(settings)
        w, h = frame_size(frame, settings)
        fov = settings.fov or frame.fov
        cams = cameras_from_poses(build(frame, n, settings, info), fov, w, h)
        return CameraPath(cams, fps, _time_track(info, settings, n, None), kind)

    return make


PATH_KINDS: Registry[Callable[..., CameraPath]] = Registry("path kind")


@PATH_KINDS.register("orbit", wrap=_generated)
def _orbit(frame: SceneFrame, n_frames: int, settings: PathSettings, info) -> np.ndarray:
    return orbit_path(frame, n_frames, settings.turns)


@PATH_KINDS.register("spiral", wrap=_generated)
def _spiral(frame: SceneFrame, n_frames: int, settings: PathSettings, info) -> np.ndarray:
    return spiral_path(frame, n_frames, settings.turns)


@PATH_KINDS.register("interpolate", wrap=_generated)
def _interpolate(frame: SceneFrame, n_frames: int, settings: PathSettings, info) -> np.ndarray:
    return interpolate_training_path(info.cameras, n_frames, settings.max_keyframes)[0]


def _time_track(info, settings: PathSettings, n_frames: int, file_times: np.ndarray | None) -> Tensor | None:
    """Per-frame times: ``--time`` wins, then the file's, then 0..1 for dynamic runs, else None."""
    dynamic = bool(getattr(info, "dynamic", False))
    if settings.time_range is not None:
        t0, t1 = settings.time_range
        for t in (t0, t1):
            if not 0.0 <= t <= 1.0:
                raise NeuralFieldsError(f"--time: times must lie in [0, 1], got {t}")
        if not dynamic:
            return None  # a static field ignores time; the CLI warns
        return torch.linspace(t0, t1, n_frames) if n_frames > 1 else torch.tensor([t0])
    if file_times is not None and dynamic:
        return torch.as_tensor(file_times, dtype=torch.float32).clamp(0, 1)
    if dynamic:
        return torch.linspace(0.0, 1.0, n_frames) if n_frames > 1 else torch.zeros(1)
    return None


# ------------------------------------------------------------------------------------ viewer helper


def orbit_camera(info, azimuth: float = 0.0, elevation: float | None = None, distance: float | None = None,
                 fov: float | None = None, width: int | None = None, height: int | None = None) -> Cameras:
    """One camera from orbit controls around the estimated scene centre (for the viewer).

    Args:
        info: the run's ``SceneInfo`` (or anything with ``cameras`` and ``aabb``).
        azimuth: degrees around the up axis, 0 = the first training camera's side.
        elevation: degrees above the horizontal plane; None = median training elevation.
        distance: from the centre in world units; None = median training distance.
        fov: vertical field of view in degrees; None = training median.
        width, height: image size; None = training size.
    Returns:
        :class:`Cameras` of length 1.
    """
    frame = _training_frame(info)
    el = math.radians(elevation) if elevation is not None else float(np.median(frame.elevations))
    el = max(-math.radians(89.5), min(math.radians(89.5), el))
    radius = frame.radius if distance is None else float(distance)
    if radius <= 0:
        raise NeuralFieldsError(f"orbit distance must be positive, got {radius}")
    w, h = width or frame.width, height or frame.height
    check_resolution(w, h, "orbit camera")
    pos = frame.position(frame.azimuths[0] + math.radians(azimuth), el, radius)
    return cameras_from_poses(_look_at_centre(frame, pos), fov or frame.fov, w, h)


def with_size(path: CameraPath, width: int, height: int) -> CameraPath:
    """The same path rendered at another size (intrinsics scaled)."""
    check_resolution(width, height)
    return replace(path, cameras=path.cameras.resized(width, height))
