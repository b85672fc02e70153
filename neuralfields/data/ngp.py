"""instant-ngp layout: one ``transforms.json`` with intrinsics, distortion and ``aabb_scale``.

Intrinsics (``fl_x fl_y cx cy w h``, or ``camera_angle_x``/``_y``) and OpenCV distortion
(``k1 k2 p1 p2``) may be given at the top level and overridden per frame. Frames whose image
is missing are skipped with one warning that counts them. instant-ngp maps the unit cube of its
own space to ``[-0.5/scale, 0.5/scale]^3`` around ``offset`` in the file's space (default
scale 0.33, offset 0.5) and enlarges that box ``aabb_scale`` times; the scene box here is the
same box expressed in the file's space. There is no split: every ``val_every``-th frame is held
out for ``val``/``test``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras
from ..errors import file_error
from . import register_format
from .scene import Scene
from .transforms import check_size, focal_from_angle, frame_file, frame_pose, load_pixels, number, read_json, resolve

DISTORTION_KEYS = ("k1", "k2", "p1", "p2")


def detect(path: Path) -> bool:
    return (path / "transforms.json").exists() and not (path / "transforms_train.json").exists()


def _intrinsics(meta: dict, frame: dict, json_path: Path, image_path: Path) -> list[float]:
    """``[fx, fy, cx, cy, w, h, k1, k2, p1, p2]`` for one frame; frame keys override the file's."""
    merged = {**meta, **{k: v for k, v in frame.items() if k != "frames"}}
    if "w" in merged and "h" in merged:
        w, h = number(merged, "w", json_path), number(merged, "h", json_path)
    else:
        from .images import image_size

        w, h = map(float, image_size(image_path))
    fx = number(merged, "fl_x", json_path)
    if fx is None:
        angle = number(merged, "camera_angle_x", json_path)
        if angle is None:
            raise file_error(json_path, "no focal length: give 'fl_x' or 'camera_angle_x'")
        fx = focal_from_angle(angle, w)
    fy = number(merged, "fl_y", json_path)
    if fy is None:
        angle_y = number(merged, "camera_angle_y", json_path)
        fy = focal_from_angle(angle_y, h) if angle_y is not None else fx
    cx = number(merged, "cx", json_path, w / 2)
    cy = number(merged, "cy", json_path, h / 2)
    dist = [number(merged, k, json_path, 0.0) for k in DISTORTION_KEYS]
    return [fx, fy, cx, cy, w, h, *dist]


def scene_box(meta: dict, json_path: Path) -> tuple[torch.Tensor, float]:
    """World-space box ``[2, 3]`` and ``aabb_scale`` following instant-ngp's conventions."""
    aabb_scale = number(meta, "aabb_scale", json_path, 1.0)
    scale = number(meta, "scale", json_path, 0.33)
    offset = np.asarray(meta.get("offset", [0.5, 0.5, 0.5]), dtype=np.float64)
    # instant-ngp's axes are the file's (y, z, x); bring the box centre back to file axes.
    centre_ngp = (0.5 - offset) / scale
    centre = np.array([centre_ngp[2], centre_ngp[0], centre_ngp[1]])
    half = 0.5 * aabb_scale / scale
    box = torch.tensor(np.stack([centre - half, centre + half]), dtype=torch.float32)
    return box, aabb_scale


def split_indices(n: int, split: str, every: int) -> list[int]:
    """Hold out every ``every``-th frame (LLFF convention) for val/test; ``all`` keeps all."""
    if split == "all" or n < 2:
        return list(range(n))
    held = [i for i in range(n) if i % every == 0]
    return held if split in ("val", "test") else [i for i in range(n) if i % every != 0]


@register_format("ngp", detect)
def load(path: Path, split: str, downscale: float = 1.0, val_every: int = 8, **_) -> Scene:
    json_path = path / "transforms.json"
    meta = read_json(json_path)
    frames = []
    missing = 0
    for i, frame in enumerate(meta["frames"]):
        file = resolve(path, frame_file(frame, json_path, i))
        if not file.exists():
            missing += 1
            continue
        frames.append((i, frame, file))
    if missing:
        warnings.warn(f"{json_path}: skipped {missing} of {len(meta['frames'])} frames whose image file is missing", stacklevel=2)
    if not frames:
        raise file_error(json_path, "none of the frames' image files exist")
    frames = [frames[i] for i in split_indices(len(frames), split, val_every)]
    poses = np.stack([frame_pose(f, json_path, i) for i, f, _ in frames])
    intr = np.array([_intrinsics(meta, f, json_path, file) for _, f, file in frames])
    for (_, _, file), row in zip(frames, intr):
        check_size(file, (int(round(row[4])), int(round(row[5]))), json_path)
    files = [file for _, _, file in frames]
    cams = Cameras.create(poses, intr[:, 0], intr[:, 1], intr[:, 2], intr[:, 3], intr[:, 4], intr[:, 5], intr[:, 6:10])
    images = load_pixels(files, downscale)
    if downscale != 1:
        cams = cams.resized(images.shape[2], images.shape[1])
    box, aabb_scale = scene_box(meta, json_path)
    return Scene(images, cams, box, split, None, aabb_scale, [str(p) for p in files], path, "ngp")
