"""Camera paths for videos and the viewer: orbit, spiral, interpolation, keyframe files.

Everything here derives from the training cameras of a run (``SceneInfo.cameras``) or from a
keyframe file, and produces a :class:`CameraPath`: one :class:`~neuralfields.cameras.Cameras`
entry per video frame plus an optional time per frame for dynamic scenes.

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

File formats (ours and nerfstudio's ``camera_path.json``) are documented in docs/camera_paths.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .cameras import Cameras, look_at
from .errors import NeuralFieldsError, file_error

MAX_SIDE = 8192  # pixels; larger frames are refused (frame buffers alone would take gigabytes)
FORMAT_NAME = "neuralfields-camera-path"
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


# ------------------------------------------------------------------------------------ rotations


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """``[N, 3, 3]`` rotations -> ``[N, 4]`` unit quaternions ``(w, x, y, z)``, w >= 0."""
    r = np.asarray(r, dtype=np.float64).reshape(-1, 3, 3)
    # Shepperd's method: take the largest of the four squared components for stability.
    tr = np.trace(r, axis1=1, axis2=2)
    cands = np.stack([1 + tr, 1 + 2 * r[:, 0, 0] - tr, 1 + 2 * r[:, 1, 1] - tr, 1 + 2 * r[:, 2, 2] - tr], -1)
    k = np.argmax(cands, -1)
    q = np.zeros((len(r), 4))
    for i in range(len(r)):
        m, s = r[i], math.sqrt(max(cands[i, k[i]], 1e-12)) * 2  # s = 4 * |largest component|
        if k[i] == 0:
            q[i] = [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
        elif k[i] == 1:
            q[i] = [(m[2, 1] - m[1, 2]) / s, s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
        elif k[i] == 2:
            q[i] = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s]
        else:
            q[i] = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return q * np.where(q[:, :1] < 0, -1.0, 1.0)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """``[N, 4]`` quaternions ``(w, x, y, z)`` -> ``[N, 3, 3]`` rotations."""
    q = np.asarray(q, dtype=np.float64).reshape(-1, 4)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], 1)


def slerp(q0: np.ndarray, q1: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Spherical interpolation of ``[N, 4]`` quaternion pairs at fractions ``u [N]`` (shortest arc)."""
    q0, q1, u = np.asarray(q0, float), np.asarray(q1, float).copy(), np.asarray(u, float)[:, None]
    dot = (q0 * q1).sum(-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # q and -q are the same rotation: take the short way
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    small = sin < 1e-6  # nearly equal: linear interpolation is exact to first order
    w0 = np.where(small, 1 - u, np.sin((1 - u) * theta) / np.where(small, 1, sin))
    w1 = np.where(small, u, np.sin(u * theta) / np.where(small, 1, sin))
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


# ------------------------------------------------------------------------------------ splines


def catmull_rom(points: np.ndarray, segment: np.ndarray, u: np.ndarray, closed: bool = False) -> np.ndarray:
    """Centripetal Catmull-Rom spline through ``points [K, D]``.

    Evaluated on ``segment [N]`` (index of the starting keyframe) at fractions ``u [N]``; the
    centripetal parametrisation (alpha = 1/2) never overshoots into cusps or self-loops. Open
    paths reflect the end points to make the missing neighbours.
    """
    p = np.asarray(points, dtype=np.float64)
    k = len(p)
    if k == 1:
        return np.repeat(p, len(segment), 0)
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    i = np.asarray(segment) + 1  # index of the segment start in ext
    p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]

    def knot(a, b):
        return np.sqrt(np.linalg.norm(b - a, axis=-1)).clip(min=1e-6)[:, None]

    t0 = np.zeros((len(i), 1))
    t1 = t0 + knot(p0, p1)
    t2 = t1 + knot(p1, p2)
    t3 = t2 + knot(p2, p3)
    t = t1 + np.asarray(u, float)[:, None] * (t2 - t1)
    # Barry-Goldman pyramid.
    a1 = (t1 - t) / (t1 - t0) * p0 + (t - t0) / (t1 - t0) * p1
    a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
    a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
    b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
    b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
    return (t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2


def keyframe_parameters(n_frames: int, n_keys: int, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Segment index and fraction ``[n_frames]`` for frames spread evenly over the keyframes.

    Open paths put the first and last frames exactly on the first and last keyframes; closed
    ones stop one frame short of returning to the start, so the video loops seamlessly.
    """
    if n_keys == 1:
        return np.zeros(n_frames, dtype=np.int64), np.zeros(n_frames)
    n_segments = n_keys if closed else n_keys - 1
    if closed:
        s = np.arange(n_frames) / n_frames * n_segments
    else:
        s = np.linspace(0.0, n_segments, n_frames) if n_frames > 1 else np.zeros(1)
    seg = np.minimum(np.floor(s).astype(np.int64), n_segments - 1)
    return seg, s - seg


def interpolate_poses(c2w: np.ndarray, n_frames: int, closed: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames through keyframe poses ``[K, 3, 4]``: spline on positions, slerp on rotations.

    Returns ``c2w [n_frames, 3, 4]`` and the ``(segment, fraction)`` of each frame, so that
    per-keyframe values (field of view, time) can be interpolated alongside.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    k = len(c2w)
    seg, u = keyframe_parameters(n_frames, k, closed)
    positions = catmull_rom(c2w[:, :, 3], seg, u, closed)
    quats = matrix_to_quaternion(c2w[:, :, :3])
    nxt = (seg + 1) % k if closed else np.minimum(seg + 1, k - 1)
    rot = quaternion_to_matrix(slerp(quats[seg], quats[nxt], u))
    return np.concatenate([rot, positions[:, :, None]], -1), seg, u


def interpolate_values(values: np.ndarray, seg: np.ndarray, u: np.ndarray, closed: bool = False) -> np.ndarray:
    """Linear interpolation of per-keyframe scalars ``[K]`` at ``(segment, fraction)``."""
    values = np.asarray(values, dtype=np.float64)
    k = len(values)
    nxt = (seg + 1) % k if closed else np.minimum(seg + 1, k - 1)
    return values[seg] * (1 - u) + values[nxt] * u


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
    quarter period apart), the classic LLFF spiral.
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
    radius = frame.radius * (1 - 0.1 * (1 - np.cos(2 * math.pi * turns * s)))
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


PATH_KINDS: dict[str, Callable[..., CameraPath]] = {
    "orbit": _generated("orbit", lambda f, n, s, info: orbit_path(f, n, s.turns)),
    "spiral": _generated("spiral", lambda f, n, s, info: spiral_path(f, n, s.turns)),
    "interpolate": _generated("interpolate",
                              lambda f, n, s, info: interpolate_training_path(info.cameras, n, s.max_keyframes)[0]),
}


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


def make_path(spec: str | Path, info, settings: PathSettings | None = None) -> CameraPath:
    """A :class:`CameraPath` from a kind name (``orbit``, ``spiral``, ``interpolate``) or a JSON file.

    Args:
        spec: path kind or file (ours or nerfstudio's ``camera_path.json``).
        info: the run's :class:`~neuralfields.model.SceneInfo` (training cameras, dynamic flag).
        settings: size, duration, field of view and time sweep (None fields are derived).
    """
    settings = settings or PathSettings()
    if settings.fov is not None and not 0 < settings.fov < 180:
        raise NeuralFieldsError(f"--fov: field of view must lie in (0, 180) degrees, got {settings.fov}")
    if str(spec) in PATH_KINDS:
        return PATH_KINDS[str(spec)](info, settings)
    path = Path(spec)
    if path.suffix.lower() != ".json":
        raise NeuralFieldsError(f"--path: unknown path kind '{spec}'; use one of {', '.join(PATH_KINDS)} or a .json file")
    return load_path_file(path, info, settings)


# ------------------------------------------------------------------------------------ files


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise file_error(path, "camera path file does not exist")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise file_error(path, f"malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise file_error(path, "expected a JSON object at the top level")
    return data


def _number(value, path: Path, what: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise file_error(path, f"{what} must be a number, got {value!r}")
    if positive and value <= 0:
        raise file_error(path, f"{what} must be positive, got {value}")
    return float(value)


def _matrix(value, path: Path, what: str) -> np.ndarray:
    """A ``3x4`` camera-to-world from nested lists (3x4 or 4x4) or a flat list of 12 or 16 numbers."""
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise file_error(path, f"{what} must be a 3x4 or 4x4 matrix of numbers") from None
    if m.ndim == 1 and m.size in (12, 16):
        m = m.reshape(-1, 4)
    if m.shape not in ((3, 4), (4, 4)) or not np.isfinite(m).all():
        raise file_error(path, f"{what} must be a 3x4 or 4x4 matrix of numbers, got shape {m.shape}")
    rot = m[:3, :3]
    scale = np.linalg.norm(rot, axis=0)
    if np.any(scale < 1e-9):
        raise file_error(path, f"{what} has a degenerate rotation")
    rot = rot / scale  # tolerate uniformly scaled rotations; rendering needs a pure rotation
    if abs(np.linalg.det(rot) - 1) > 1e-2:
        raise file_error(path, f"{what} is not a rotation (determinant {np.linalg.det(rot):.3f})")
    return np.concatenate([rot, m[:3, 3:]], 1)


def _keyframe_pose(key: dict, path: Path, where: str, up_default: np.ndarray) -> np.ndarray:
    if "c2w" in key:
        return _matrix(key["c2w"], path, f"{where} 'c2w'")
    if "position" in key and "look_at" in key:
        pos = _vector(key["position"], path, f"{where} 'position'")
        target = _vector(key["look_at"], path, f"{where} 'look_at'")
        up = _vector(key["up"], path, f"{where} 'up'") if "up" in key else up_default
        if np.linalg.norm(target - pos) < 1e-9:
            raise file_error(path, f"{where}: 'position' and 'look_at' coincide")
        if np.linalg.norm(np.cross(target - pos, up)) < 1e-9:
            raise file_error(path, f"{where}: view direction is parallel to 'up'")
        return look_at(torch.as_tensor(pos), torch.as_tensor(target), torch.as_tensor(up)).double().numpy()
    raise file_error(path, f"{where} needs 'c2w' or both 'position' and 'look_at'")


def _vector(value, path: Path, what: str) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        v = np.zeros(0)
    if v.shape != (3,) or not np.isfinite(v).all():
        raise file_error(path, f"{what} must be a list of 3 numbers")
    return v


def _size_from(data: dict, path: Path, wkey: str, hkey: str) -> tuple[int, int] | None:
    if wkey in data or hkey in data:
        if wkey not in data or hkey not in data:
            raise file_error(path, f"give both '{wkey}' and '{hkey}' or neither")
        w = _number(data[wkey], path, f"'{wkey}'", positive=True)
        h = _number(data[hkey], path, f"'{hkey}'", positive=True)
        check_resolution(int(w), int(h), str(path))
        return int(w), int(h)
    return None


def load_keyframes(path: Path, info, settings: PathSettings) -> CameraPath:
    """Our keyframe format (docs/camera_paths.md): poses interpolated like ``interpolate``."""
    data = _read_json(path)
    keys = data.get("keyframes")
    if not isinstance(keys, list) or not keys:
        raise file_error(path, "'keyframes' must be a non-empty list")
    frame = _training_frame(info)
    poses, fovs, times = [], [], []
    for i, key in enumerate(keys):
        where = f"keyframe {i}"
        if not isinstance(key, dict):
            raise file_error(path, f"{where} must be an object")
        poses.append(_keyframe_pose(key, path, where, frame.up))
        fov = _number(key["fov"], path, f"{where} 'fov'", positive=True) if "fov" in key else (settings.fov or frame.fov)
        if fov >= 180:
            raise file_error(path, f"{where} 'fov' must be below 180 degrees, got {fov}")
        fovs.append(fov)
        if "time" in key:
            times.append(_number(key["time"], path, f"{where} 'time'"))
    if times and len(times) != len(keys):
        raise file_error(path, "give 'time' on every keyframe or on none")
    if any(not 0 <= t <= 1 for t in times):
        raise file_error(path, "keyframe times must lie in [0, 1]")
    closed = bool(data.get("loop", False))
    fps = _number(data["fps"], path, "'fps'", positive=True) if "fps" in data else None
    seconds = _number(data["seconds"], path, "'seconds'", positive=True) if "seconds" in data else None
    n, fps = _frame_count(settings, fps, seconds)
    w, h = frame_size(frame, settings, _size_from(data, path, "width", "height"))
    c2w, seg, u = interpolate_poses(np.stack(poses), n, closed)
    fov = interpolate_values(np.array(fovs), seg, u, closed)
    if settings.fov is not None:
        fov = np.full(n, settings.fov)
    file_times = interpolate_values(np.array(times), seg, u, closed) if times else None
    return CameraPath(cameras_from_poses(c2w, fov, w, h), fps, _time_track(info, settings, n, file_times), "keyframes")


def load_nerfstudio(path: Path, info, settings: PathSettings) -> CameraPath:
    """nerfstudio's ``camera_path.json``: one entry per frame, used as it is (no resampling).

    ``camera_to_world`` is a flattened 4x4 in the OpenGL convention (ours), ``fov`` the vertical
    field of view in degrees, ``render_time`` an optional per-frame time (all frames or none).
    """
    data = _read_json(path)
    entries = data["camera_path"]
    if not isinstance(entries, list) or not entries:
        raise file_error(path, "'camera_path' must be a non-empty list")
    frame = _training_frame(info)
    size = _size_from(data, path, "render_width", "render_height")
    poses, fovs, times = [], [], []
    for i, cam in enumerate(entries):
        where = f"camera_path[{i}]"
        if not isinstance(cam, dict) or "camera_to_world" not in cam:
            raise file_error(path, f"{where} needs 'camera_to_world'")
        poses.append(_matrix(cam["camera_to_world"], path, f"{where} 'camera_to_world'"))
        fovs.append(_number(cam["fov"], path, f"{where} 'fov'", positive=True) if "fov" in cam else frame.fov)
        if "render_time" in cam:
            times.append(_number(cam["render_time"], path, f"{where} 'render_time'"))
        if size is None and "aspect" in cam:
            aspect = _number(cam["aspect"], path, f"{where} 'aspect'", positive=True)
            size = (max(1, round(frame.height * aspect)), frame.height)
    if times and len(times) != len(entries):
        times = []  # nerfstudio itself ignores times unless every frame has one
    fps = _number(data["fps"], path, "'fps'", positive=True) if "fps" in data else None
    if fps is None and "seconds" in data:
        fps = len(entries) / _number(data["seconds"], path, "'seconds'", positive=True)
    fps = settings.fps or fps or DEFAULT_FPS
    w, h = frame_size(frame, settings, size)
    fov = np.full(len(entries), settings.fov) if settings.fov is not None else np.array(fovs)
    file_times = np.array(times) if times else None
    cams = cameras_from_poses(np.stack(poses), fov, w, h)
    return CameraPath(cams, fps, _time_track(info, settings, len(entries), file_times), "nerfstudio")


def load_path_file(path: str | Path, info, settings: PathSettings | None = None) -> CameraPath:
    """Read a camera path file, telling nerfstudio's format (``camera_path`` key) from ours (``keyframes``)."""
    path, settings = Path(path), settings or PathSettings()
    data = _read_json(path)
    if "camera_path" in data:  # checked first: nerfstudio files also carry their editor's 'keyframes'
        return load_nerfstudio(path, info, settings)
    if "keyframes" in data:
        return load_keyframes(path, info, settings)
    raise file_error(path, "not a camera path: expected a 'keyframes' list (ours) or 'camera_path' (nerfstudio)")


def save_keyframes(path: str | Path, c2w: Tensor | np.ndarray, fov: float | list[float], width: int, height: int,
                   fps: float = DEFAULT_FPS, seconds: float = DEFAULT_SECONDS, times: list[float] | None = None,
                   loop: bool = False) -> Path:
    """Write keyframes ``c2w [K, 3|4, 4]`` in our format (the viewer saves paths this way)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    fovs = np.broadcast_to(np.asarray(fov, dtype=np.float64), (len(c2w),))
    keys = []
    for i, m in enumerate(c2w):
        key = {"c2w": m[:3, :4].round(8).tolist(), "fov": float(fovs[i])}
        if times is not None:
            key["time"] = float(times[i])
        keys.append(key)
    data = {"format": FORMAT_NAME, "version": 1, "width": int(width), "height": int(height), "fps": fps,
            "seconds": seconds, "loop": loop, "keyframes": keys}
    path = Path(path)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def save_nerfstudio(path: str | Path, camera_path: CameraPath) -> Path:
    """Write every frame of ``camera_path`` as nerfstudio's ``camera_path.json`` (atomically).

    Per frame: ``camera_to_world`` (flattened 4x4, OpenGL axes as ours), vertical ``fov`` in
    degrees, ``aspect`` and, for dynamic paths, ``render_time``; :func:`load_nerfstudio` reads
    the frames back as they are.
    """
    from .run.folder import write_json_atomic

    cams = camera_path.cameras
    c2w = cams.c2w.double().cpu().numpy()
    fovs = vertical_fov(cams).double().cpu().numpy()
    bottom = np.array([[0.0, 0.0, 0.0, 1.0]])
    entries = []
    for i in range(len(camera_path)):
        entry = {"camera_to_world": np.concatenate([c2w[i], bottom]).round(8).reshape(-1).tolist(),
                 "fov": float(fovs[i]), "aspect": camera_path.width / camera_path.height}
        if camera_path.times is not None:
            entry["render_time"] = camera_path.time(i)
        entries.append(entry)
    data = {"camera_type": "perspective", "render_width": camera_path.width, "render_height": camera_path.height,
            "fps": camera_path.fps, "seconds": len(camera_path) / camera_path.fps, "camera_path": entries}
    path = Path(path)
    write_json_atomic(path, data)
    return path


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


__all__ = [
    "CameraPath", "PathSettings", "SceneFrame", "PATH_KINDS", "estimate_scene_frame", "make_path", "load_path_file",
    "orbit_camera", "orbit_path", "spiral_path", "interpolate_poses", "interpolate_training_path", "save_keyframes",
    "save_nerfstudio",
    "slerp", "catmull_rom",
]
