"""nerfstudio layout: a ``transforms.json`` that names its ``camera_model``.

It extends the instant-ngp file (parsed by the same code, :mod:`.ngp`): intrinsics ``fl_x fl_y
cx cy w h`` and OpenCV distortion ``k1 k2 p1 p2`` at the top level or per frame, image paths
relative to the JSON, camera-to-world poses in the OpenGL convention. Additionally:

* ``camera_model``: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL or OPENCV (the projections this
  project renders); fisheye and other models stop with an error naming the model.
* ``applied_transform`` (3x4 or 4x4): what nerfstudio's processing applied to the original
  (COLMAP) poses; recorded as ``Scene.applied_transform``, the poses already include it.
* ``ply_file_path``: sparse points in the file's world frame, kept as ``Scene.points``.
* ``images_N/`` beside ``images/`` (nerfstudio's downscaled copies) are read when
  ``downscale == N`` and every frame has its copy.

Poses are used as stored when every camera centre lies in ``[-FIT_LIMIT, FIT_LIMIT]^3`` (files
written normalised, like NeRF-synthetic-scale captures); the scene box is then the cube around
the origin that holds the cameras and the robust bounds of the points, with a 10% margin. Larger
files (nerfstudio's processing keeps COLMAP's arbitrary units) are normalised like COLMAP
captures into ``[-1, 1]^3`` (:mod:`.normalize`) and ``Scene.transform`` records how. Every
``val_every``-th image is held out for val/test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras
from ..errors import file_error
from . import register_format
from .blender import splits as blender_splits
from .capture import SCENE_HALF_SIZE, check_aspect, float32
from .normalize import apply_transform, normalize_poses, robust_bounds, scene_kind, transform_points
from .ply import read_ply_points
from .scene import Scene, split_indices
from .transforms import check_size, frame_cameras, load_pixels, present_frames, read_json

SUPPORTED_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")
EXTRA_DISTORTION = ("k3", "k4", "k5", "k6")  # models beyond k1 k2 p1 p2; refused when non-zero
FIT_LIMIT = 4.0
MARGIN = 0.9


def is_nerfstudio(path: Path) -> bool:
    """Whether ``path/transforms.json`` is nerfstudio's (it names a ``camera_model``)."""
    json_path = path / "transforms.json"
    if not json_path.exists():
        return False
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False  # the ngp loader reports the malformed file
    return isinstance(meta, dict) and "camera_model" in meta


def detect(path: Path) -> bool:
    return is_nerfstudio(path) and not blender_splits(path)


def _check_model(meta: dict, json_path: Path) -> None:
    model = str(meta.get("camera_model", "OPENCV"))
    if model not in SUPPORTED_MODELS:
        raise file_error(json_path, f"camera_model {model} is not supported (supported: {', '.join(SUPPORTED_MODELS)})")
    for i, frame in enumerate([meta, *meta["frames"]]):
        extra = [k for k in EXTRA_DISTORTION if isinstance(frame, dict) and float(frame.get(k) or 0) != 0]
        if extra:
            where = "top level" if i == 0 else f"frame {i - 1}"
            raise file_error(json_path, f"{where}: distortion {', '.join(extra)} is not supported (only k1 k2 p1 p2)")


def _matrix(value, key: str, json_path: Path) -> np.ndarray:
    """A 3x4 or 4x4 matrix entry as ``[4, 4]`` float64."""
    try:
        mat = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        mat = np.zeros(0)
    if mat.shape not in ((3, 4), (4, 4)) or not np.isfinite(mat).all():
        raise file_error(json_path, f"'{key}' must be a 3x4 or 4x4 matrix")
    out = np.eye(4)
    out[:3] = mat[:3]
    return out


def _downscaled_copies(files: list[Path], downscale: float) -> list[Path] | None:
    """``<folder>_N/<name>`` for every file when ``downscale == N`` and all copies exist."""
    if downscale != int(downscale) or downscale <= 1:
        return None
    copies = [f.parent.with_name(f"{f.parent.name}_{int(downscale)}") / f.name for f in files]
    return copies if all(c.exists() for c in copies) else None


@register_format("nerfstudio", detect)
def load(path: Path, split: str, downscale: float = 1.0, val_every: int = 8, **_) -> Scene:
    json_path = path / "transforms.json"
    meta = read_json(json_path)
    _check_model(meta, json_path)
    applied = _matrix(meta["applied_transform"], "applied_transform", json_path) if "applied_transform" in meta else None
    points = None
    if meta.get("ply_file_path"):
        ply = (path / str(meta["ply_file_path"])).resolve()
        if not ply.exists():
            raise file_error(ply, f"point cloud file not found ('ply_file_path' in {json_path.name})")
        points = read_ply_points(ply)

    # Scene frame and box from every frame present, so that all splits agree.
    frames = present_frames(path, meta, json_path)
    poses, intr = frame_cameras(meta, frames, json_path)
    centres = poses[:, :, 3]
    bounds = robust_bounds(points) if points is not None and len(points) else np.zeros((0, 3))
    kind = scene_kind(poses, points)
    transform = None
    if np.abs(centres).max() <= FIT_LIMIT:
        half = max(np.abs(np.concatenate([centres, bounds])).max() / MARGIN, 1e-6)
    else:
        transform = normalize_poses(poses, points, box=SCENE_HALF_SIZE, margin=MARGIN)
        poses = apply_transform(poses, transform)[:, :3]
        points = transform_points(points, transform) if points is not None else None
        half = SCENE_HALF_SIZE

    keep = split_indices(len(frames), split, val_every)
    files = [frames[i][2] for i in keep]
    intr = intr[keep]
    copies = _downscaled_copies(files, downscale)
    if copies is None:
        for file, row in zip(files, intr):
            check_size(file, (int(round(row[4])), int(round(row[5]))), json_path)
        images = load_pixels(files, downscale)
    else:
        for file, row in zip(copies, intr):
            check_aspect(file, row[4], row[5], json_path)
        images = load_pixels(copies, 1.0)
        files = copies
    cams = Cameras.create(poses[keep], intr[:, 0], intr[:, 1], intr[:, 2], intr[:, 3], intr[:, 4], intr[:, 5], intr[:, 6:10])
    cams = cams.resized(images.shape[2], images.shape[1])  # exactly the file's intrinsics at full size
    aabb = torch.tensor([[-half] * 3, [half] * 3], dtype=torch.float32)
    return Scene(images, cams, aabb, split, None, 1.0, [str(p) for p in files], path, "nerfstudio",
                 kind=kind, points=float32(points), transform=float32(transform), applied_transform=float32(applied))
