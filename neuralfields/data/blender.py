"""NeRF-synthetic ("Blender") layout: ``transforms_{train,val,test}.json`` beside the images.

Each frame has ``file_path`` (extension optional) and ``transform_matrix``; the file gives
``camera_angle_x`` (horizontal field of view). D-NeRF adds ``time`` in [0, 1] to each frame,
which makes the scene dynamic. Images are RGBA; the background option blends them.

A folder may hold any of the three splits (a benchmark's held-out views often ship as
``transforms_test.json`` alone); ``all`` joins the splits present, in the order train, val, test.
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
from .transforms import (check_angle, check_size, focal_from_angle, frame_file, frame_pose, load_pixels, number,
                         read_json, resolve)

DEFAULT_BOX = 1.5  # NeRF-synthetic objects fit in [-1.5, 1.5]^3
SPLITS = ("train", "val", "test")


def splits(path: Path) -> list[str]:
    """The splits whose ``transforms_{split}.json`` is in ``path``."""
    return [s for s in SPLITS if (path / f"transforms_{s}.json").exists()]


def detect(path: Path) -> bool:
    return bool(splits(path))


def join_scenes(parts: list[Scene], split: str) -> Scene:
    """One scene of several splits' images (which must share a size) and cameras."""
    first = parts[0]
    for part in parts[1:]:
        if part.images.shape[1:] != first.images.shape[1:]:
            raise file_error(part.root, f"split '{part.split}' has {part.width}x{part.height} images, "
                                        f"split '{first.split}' {first.width}x{first.height}: 'all' needs one size")
        if (part.times is None) != (first.times is None):
            raise file_error(part.root, "some splits have frame times and some do not")
    cams = Cameras(*(torch.cat([getattr(p.cameras, f) for p in parts]) for f in Cameras._fields()))
    times = None if first.times is None else torch.cat([p.times for p in parts])
    return Scene(torch.cat([p.images for p in parts]), cams, first.aabb, split, times,
                 files=[f for p in parts for f in p.files], root=first.root, format="blender")


@register_format("blender", detect, splits)
def load(path: Path, split: str, downscale: float = 1.0, **_) -> Scene:
    if split == "all":
        return join_scenes([load(path, s, downscale) for s in splits(path)], "all")
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
    fx = focal_from_angle(check_angle(angle, "camera_angle_x", json_path), width)
    angle_y = number(meta, "camera_angle_y", json_path)
    fy = fx if angle_y is None else focal_from_angle(check_angle(angle_y, "camera_angle_y", json_path), height)
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
