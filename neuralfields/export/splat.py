"""Point clouds as Gaussian splats (``.splat``), a format browsers render in real time.

Each point of :func:`~.pointcloud.export_pointcloud` becomes an opaque round Gaussian
(:meth:`~neuralfields.splats.GaussianScene.from_points`) whose standard deviation is half the
distance to its nearest neighbour, so neighbouring splats just overlap and the cloud reads as a
closed surface; the file is written by :mod:`neuralfields.splats.io`, which owns the ``.splat``
layout. The same cloud is where a splat student starts (``distill --student gaussians``).

Axes: 3D-Gaussian-splatting viewers take ``-y`` as up (COLMAP's camera convention) and orbit
around the origin from 5 units away. :func:`viewer_transform` moves the scene centre to the
origin, turns the scene's up axis to ``-y`` and scales the median training-camera distance to
5 units, so the first view in such a viewer resembles a training view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NeuralFieldsError
from ..splats.io import SPLAT_DTYPE, read_splat
from ..splats.io import save_splat as save_splat_scene
from ..splats.scene import GaussianScene, spacing_scales

__all__ = ["SPLAT_DTYPE", "read_splat", "save_splat", "scene_transform", "splat_scales", "viewer_transform"]

VIEWER_DISTANCE = 5.0  # the orbit radius web splat viewers start at
OPAQUE = 0.999  # the opacity of point-cloud splats: 255 once written as a byte


def splat_scales(points: np.ndarray) -> np.ndarray:
    """``[P]`` splat standard deviation per point: half the distance to its nearest other point (bounded below)."""
    return spacing_scales(points, neighbours=1, factor=0.5)


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
        transform: ``[4, 4]`` similarity applied to the splats (e.g. :func:`viewer_transform`).
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
    scene = GaussianScene.from_points(points, colors / 255.0, radius, opacity=OPAQUE, max_degree=0)
    return save_splat_scene(scene, out, transform)
