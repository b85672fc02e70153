"""NeRF-synthetic ("Blender") layout: ``transforms_{train,val,test}.json`` beside the images.

Each frame has ``file_path`` (extension optional) and ``transform_matrix``; the file gives
``camera_angle_x`` (horizontal field of view). D-NeRF adds ``time`` in [0, 1] to each frame,
which makes the scene dynamic. Images are RGBA; the background option blends them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras
from ..errors import file_error
from . import register_format
from .images import image_size
from .scene import Scene, SplitNotFound
from .transforms import check_size, focal_from_angle, frame_file, frame_pose, load_pixels, number, read_json, resolve

DEFAULT_BOX = 1.5  # NeRF-synthetic objects fit in [-1.5, 1.5]^3


def detect(path: Path) -> bool:
    return (path / "transforms_train.json").exists()


@register_format("blender", detect)
def load(path: Path, split: str, downscale: float = 1.0, **_) -> Scene:
    json_path = path / f"transforms_{split}.json"
    if not json_path.exists():
        # No silent stand-in (test used to fall back to val): metrics must say which images they are on.
        found = sorted(p.name[len("transforms_"):-len(".json")] for p in path.glob("transforms_*.json"))
        raise SplitNotFound(f"{json_path}: the dataset has no '{split}' split; splits found: {', '.join(found) or 'none'}")
    meta = read_json(json_path)
    angle = number(meta, "camera_angle_x", json_path)
    if angle is None:
        raise file_error(json_path, "missing 'camera_angle_x'")
    frames = meta["frames"]
    poses = np.stack([frame_pose(f, json_path, i) for i, f in enumerate(frames)])
    files = [resolve(path, frame_file(f, json_path, i)) for i, f in enumerate(frames)]
    missing = [p for p in files if not p.exists()]
    if missing:
        raise file_error(missing[0], f"image file not found ({len(missing)} of {len(files)} frames in {json_path.name} missing)")
    width, height = image_size(files[0])
    for p in files[1:]:
        check_size(p, (width, height), json_path)
    fx = focal_from_angle(angle, width)
    fy = focal_from_angle(number(meta, "camera_angle_y", json_path), height) if "camera_angle_y" in meta else fx
    cams = Cameras.create(poses, fx, fy, width / 2, height / 2, width, height)
    times = None
    if all("time" in f for f in frames):
        times = torch.tensor([number(f, "time", json_path) for f in frames], dtype=torch.float32)
    elif any("time" in f for f in frames):
        raise file_error(json_path, "some frames have 'time' and some do not")
    box = meta.get("aabb", [[-DEFAULT_BOX] * 3, [DEFAULT_BOX] * 3])
    images = load_pixels(files, downscale)
    cams = cams.resized(images.shape[2], images.shape[1])
    return Scene(images, cams, torch.tensor(box, dtype=torch.float32), split, times,
                 files=[str(p) for p in files], root=path, format="blender")
