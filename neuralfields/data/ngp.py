"""instant-ngp layout: one ``transforms.json`` with intrinsics, distortion and ``aabb_scale``.

Intrinsics (``fl_x fl_y cx cy w h``, or ``camera_angle_x``/``_y``) and OpenCV distortion
(``k1 k2 p1 p2``) may be given at the top level and overridden per frame. Frames whose image
is missing are skipped with one warning that counts them. instant-ngp maps the unit cube of its
own space to ``[-0.5/scale, 0.5/scale]^3`` around ``offset`` in the file's space (default
scale 0.33, offset 0.5) and enlarges that box ``aabb_scale`` times; the scene box here is the
same box expressed in the file's space. There is no split: every ``val_every``-th frame is held
out for ``val``/``test``. An ``aabb_scale`` above 1 marks the scene unbounded (``Scene.kind``).

A ``transforms.json`` that names a ``camera_model`` is nerfstudio's (see :mod:`.nerfstudio`);
auto-detection leaves it to that loader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras
from . import register_format
from .blender import splits as blender_splits
from .scene import Scene, split_indices
from .transforms import check_size, frame_cameras, load_pixels, number, present_frames, read_json


def detect(path: Path) -> bool:
    from .nerfstudio import is_nerfstudio

    return (path / "transforms.json").exists() and not blender_splits(path) and not is_nerfstudio(path)


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


@register_format("ngp", detect)
def load(path: Path, split: str, downscale: float = 1.0, val_every: int = 8, **_) -> Scene:
    json_path = path / "transforms.json"
    meta = read_json(json_path)
    frames = present_frames(path, meta, json_path)
    frames = [frames[i] for i in split_indices(len(frames), split, val_every)]
    poses, intr = frame_cameras(meta, frames, json_path)
    for (_, _, file), row in zip(frames, intr):
        check_size(file, (int(round(row[4])), int(round(row[5]))), json_path)
    files = [file for _, _, file in frames]
    cams = Cameras.create(poses, intr[:, 0], intr[:, 1], intr[:, 2], intr[:, 3], intr[:, 4], intr[:, 5], intr[:, 6:10])
    images = load_pixels(files, downscale)
    if downscale != 1:
        cams = cams.resized(images.shape[2], images.shape[1])
    box, aabb_scale = scene_box(meta, json_path)
    # instant-ngp users set aabb_scale > 1 when the scene reaches beyond the unit cube (a room, a
    # landscape): that is the hint for a contracted, unbounded space.
    kind = "unbounded" if aabb_scale > 1 else "object"
    return Scene(images, cams, box, split, None, aabb_scale, [str(p) for p in files], path, "ngp", kind=kind)
