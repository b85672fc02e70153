"""Point clouds as Gaussian splats (``.splat``), a format browsers render in real time.

The ``.splat`` layout (antimatter15's web viewer, gsplat.js, Gradio's ``Model3D``) is 32 bytes
per splat, little-endian: position ``3 x float32``, scale ``3 x float32`` (standard deviations,
not logs), colour ``4 x uint8`` (RGBA, A = opacity), rotation ``4 x uint8`` (unit quaternion
``w, x, y, z`` mapped from [-1, 1] to [0, 255] as ``q * 128 + 128``).

Each point of :func:`~.pointcloud.export_pointcloud` becomes an opaque round splat whose
standard deviation is half the distance to its nearest neighbour, so neighbouring splats just
overlap and the cloud reads as a closed surface.

Axes: 3D-Gaussian-splatting viewers take ``-y`` as up (COLMAP's camera convention) and orbit
around the origin from 5 units away. :func:`viewer_transform` moves the scene centre to the
origin, turns the scene's up axis to ``-y`` and scales the median training-camera distance to
5 units, so the first view in such a viewer resembles a training view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import NeuralFieldsError, file_error

SPLAT_DTYPE = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rotation", "u1", 4)])
VIEWER_DISTANCE = 5.0  # the orbit radius web splat viewers start at


def splat_scales(points: np.ndarray, neighbours: int = 1) -> np.ndarray:
    """``[P]`` splat standard deviation per point: half the distance to its nearest other point (bounded below)."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    if len(points) < 2:
        return np.full(len(points), 1e-3)
    dist = cKDTree(points).query(points, k=neighbours + 1)[0][:, -1]
    floor = max(float(np.median(dist)) * 0.25, 1e-6)  # duplicates would give invisible splats
    return 0.5 * np.maximum(dist, floor)


def viewer_transform(centre: np.ndarray, up: np.ndarray, axis1: np.ndarray, radius: float) -> np.ndarray:
    """``[4, 4]`` world -> splat-viewer frame (see the module docstring).

    ``centre``, ``up``, ``axis1`` are ``[3]`` (a :class:`~neuralfields.camera_paths.SceneFrame`'s);
    the rows ``(axis1, -up, up x axis1)`` form a proper rotation.
    """
    up = np.asarray(up, dtype=np.float64)
    axis1 = np.asarray(axis1, dtype=np.float64)
    rotation = np.stack([axis1, -up, np.cross(up, axis1)])
    scale = VIEWER_DISTANCE / max(float(radius), 1e-12)
    out = np.eye(4)
    out[:3, :3] = scale * rotation
    out[:3, 3] = -scale * rotation @ np.asarray(centre, dtype=np.float64)
    return out


def scene_transform(info) -> np.ndarray:
    """:func:`viewer_transform` of a run's scene frame (``info``: its ``SceneInfo``)."""
    from ..camera_paths import estimate_scene_frame

    frame = estimate_scene_frame(info.cameras, info.aabb)
    return viewer_transform(frame.centre, frame.up, frame.axis1, frame.radius)


def save_splat(points: np.ndarray, colors: np.ndarray, out: str | Path, scales: np.ndarray | None = None,
               transform: np.ndarray | None = None) -> Path:
    """Write opaque round splats.

    Args:
        points: ``[P, 3]`` world positions; colors: ``[P, 3]`` uint8.
        scales: ``[P]`` radii in world units (default :func:`splat_scales`).
        transform: ``[4, 4]`` similarity applied to positions and radii (e.g. :func:`viewer_transform`).
    The file is written beside ``out`` and renamed over it, so a reader never sees half a file.
    """
    out = Path(out)
    if out.suffix.lower() != ".splat":
        raise NeuralFieldsError(f"--out {out}: splats are written as .splat")
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    colors = np.asarray(colors).reshape(-1, 3)
    if len(colors) != len(points):
        raise NeuralFieldsError(f"{out}: {len(points)} points but {len(colors)} colours")
    radius = splat_scales(points) if scales is None else np.asarray(scales, dtype=np.float64).reshape(-1)
    if transform is not None:
        transform = np.asarray(transform, dtype=np.float64)
        points = points @ transform[:3, :3].T + transform[:3, 3]
        radius = radius * abs(np.linalg.det(transform[:3, :3])) ** (1 / 3)
    data = np.zeros(len(points), dtype=SPLAT_DTYPE)
    data["position"] = points
    data["scale"] = radius[:, None]
    data["rgba"][:, :3] = colors
    data["rgba"][:, 3] = 255
    data["rotation"] = (255, 128, 128, 128)  # identity quaternion: round splats need no rotation
    with atomic_path(out) as tmp:
        data.tofile(tmp)
    return out


def read_splat(path: str | Path) -> np.ndarray:
    """The records of a ``.splat`` file (fields ``position``, ``scale``, ``rgba``, ``rotation``)."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0 or size % SPLAT_DTYPE.itemsize:
        raise file_error(path, f"not a .splat file: {size} bytes is not a multiple of {SPLAT_DTYPE.itemsize}")
    return np.fromfile(path, dtype=SPLAT_DTYPE)
