"""Orbit views: the pose math behind the sliders and the mouse, and the page script that drives it.

A view orbits a look-at point (the *target*) at the scene frame's centre plus a pan offset. The
offset is kept in the frame's own axes ``(b1, b2, up)`` in multiples of the median training
distance: ``b1`` is the horizontal direction of azimuth 0 (training camera 0's side), ``b2 = up x
b1``. The browser script (``static/navigation.js``) does the same trigonometry to turn a shift-drag
into a target offset, so pan speed and direction match the picture without a server round trip.

The script keeps its own camera across gestures and sends absolute values, so quick gestures add
up even while the sliders still show older frames; it takes the sliders as its camera again only
when the user moves one, or when a handler sets the view (a run loaded, a training camera) and
with it a new :func:`view_mark` in the hidden ``nav-mark`` box.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from neuralfields.camera_paths import SceneFrame, cameras_from_poses
from neuralfields.cameras import Cameras, look_at
from neuralfields.errors import NeuralFieldsError

# Control ranges; distance is relative to the median training distance so the slider suits any scene.
AZIMUTH_RANGE = (-360.0, 360.0)
ELEVATION_RANGE = (-89.0, 89.0)
DISTANCE_RANGE = (0.1, 4.0)
FOV_RANGE = (5.0, 150.0)
TARGET_LIMIT = 10.0  # pan offsets beyond 10 training distances are refused (the view would be empty)
QUALITIES = ("preview", "full")  # mouse requests: a low-resolution frame while moving, the full one at rest
SCRIPT = Path(__file__).with_name("static") / "navigation.js"


def check_number(value, what: str, low: float, high: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NeuralFieldsError(f"{what}: expected a number, got {value!r}") from None
    if not low <= v <= high:
        raise NeuralFieldsError(f"{what}: expected a value in [{low:g}, {high:g}], got {value}")
    return v


def parse_target(text) -> tuple[float, float, float]:
    """``"x,y,z"`` (empty: the centre) -> the pan offset; a one-line error for anything else."""
    if text is None or str(text).strip() == "":
        return (0.0, 0.0, 0.0)
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) and abs(v) <= TARGET_LIMIT for v in values):
        raise NeuralFieldsError(f"target: expected 3 comma-separated numbers within +-{TARGET_LIMIT:g}, got {text!r}")
    return values


def format_target(target) -> str:
    return ",".join(f"{float(v):.5g}" for v in target)


@dataclass
class OrbitView:
    """One orbit camera. Angles in degrees; ``distance`` and ``target`` in median training distances."""

    azimuth: float = 0.0  # around the up axis, 0 = training camera 0's side
    elevation: float = 20.0  # above the horizontal plane
    distance: float = 1.0  # from the target
    fov: float = 40.0  # vertical
    target: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))  # pan offset in (b1, b2, up)

    @classmethod
    def checked(cls, azimuth, elevation, distance, fov, target="0,0,0") -> "OrbitView":
        """A view from page or API values; each bad value is a one-line error naming the control."""
        return cls(check_number(azimuth, "azimuth", *AZIMUTH_RANGE),
                   check_number(elevation, "elevation", *ELEVATION_RANGE),
                   check_number(distance, "distance", *DISTANCE_RANGE),
                   check_number(fov, "field of view", *FOV_RANGE),
                   target if isinstance(target, tuple) else parse_target(target))

    def clamped(self) -> "OrbitView":
        """The same camera with every control inside its slider's range (azimuth wrapped)."""
        azimuth = (self.azimuth + 180.0) % 360.0 - 180.0
        return replace(self, azimuth=180.0 if azimuth == -180.0 else azimuth,
                       elevation=float(np.clip(self.elevation, *ELEVATION_RANGE)),
                       distance=float(np.clip(self.distance, *DISTANCE_RANGE)),
                       fov=float(np.clip(self.fov, *FOV_RANGE)))


def frame_axes(frame: SceneFrame) -> np.ndarray:
    """``[3, 3]`` rows ``b1, b2, up`` (float64): the axes of azimuth and pan offsets."""
    az0 = float(frame.azimuths[0]) if len(frame.azimuths) else 0.0
    b1 = math.cos(az0) * frame.axis1 + math.sin(az0) * frame.axis2
    return np.stack([b1, np.cross(frame.up, b1), frame.up])


def view_pose(frame: SceneFrame, view: OrbitView) -> np.ndarray:
    """``[3, 4]`` float64 camera-to-world (OpenGL axes) of ``view`` in ``frame``.

    With a zero target this is exactly :func:`neuralfields.camera_paths.orbit_camera`'s pose.
    """
    axes = frame_axes(frame)
    a, e = math.radians(view.azimuth), math.radians(view.elevation)
    direction = np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)]) @ axes
    target = frame.centre + frame.radius * (np.asarray(view.target, dtype=np.float64) @ axes)
    eye = target + view.distance * frame.radius * direction
    return look_at(torch.as_tensor(eye), torch.as_tensor(target), torch.as_tensor(frame.up)).double().numpy()


def view_camera(frame: SceneFrame, view: OrbitView, width: int, height: int) -> Cameras:
    """:class:`Cameras` of length 1 (CPU tensors; the renderer moves rays to the model's device)."""
    return cameras_from_poses(view_pose(frame, view)[None], view.fov, width, height)


_marks = itertools.count(1)


def view_mark() -> int:
    """A number no earlier view set by a handler had: the page script's cue to take the sliders as
    its camera again (see the module doc)."""
    return next(_marks)


def page_script() -> str:
    """The browser half of navigation (pointer and wheel listeners), run once when the page loads."""
    return SCRIPT.read_text()


# The hidden "navigate" button's js: swap in the mouse's camera, quality and sequence number.
REQUEST_JS = "(...args) => (window.nfNav ? window.nfNav.request(args) : args)"


class NewestRequests:
    """The newest navigation request number per browser session: older ones are stale.

    The page numbers its mouse requests; one that reaches the server after a newer one from the
    same session was handled is answered at once with nothing (``gr.skip()``) instead of a render.
    """

    def __init__(self, sessions: int = 256):
        self.sessions = max(1, sessions)
        self._newest: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, session: str | None, seq) -> bool:
        """Record ``seq`` for ``session``; False when a newer request was seen already."""
        try:
            number = float(seq)
        except (TypeError, ValueError):
            raise NeuralFieldsError(f"request number: expected a number, got {seq!r}") from None
        key = session or ""
        with self._lock:
            if number < self._newest.get(key, -math.inf):
                return False
            self._newest[key] = number
            self._newest.move_to_end(key)
            while len(self._newest) > self.sessions:
                self._newest.popitem(last=False)
            return True
