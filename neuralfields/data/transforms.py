"""Shared parsing of ``transforms*.json`` files (NeRF-synthetic, D-NeRF and instant-ngp layouts)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import file_error
from .images import image_size, read_images, resolve_image_path


def read_json(path: Path) -> dict:
    """Parse a JSON file into a dict, with one-line errors."""
    if not path.exists():
        raise file_error(path, "file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise file_error(path, f"malformed JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise file_error(path, f"cannot read ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise file_error(path, "expected an object with a 'frames' list")
    if not data["frames"]:
        raise file_error(path, "'frames' is empty")
    return data


def frame_pose(frame: dict, json_path: Path, index: int) -> np.ndarray:
    """The ``[4, 4]`` camera-to-world matrix of frame ``index``."""
    if not isinstance(frame, dict) or "transform_matrix" not in frame:
        raise file_error(json_path, f"frame {index} has no 'transform_matrix'")
    try:
        pose = np.asarray(frame["transform_matrix"], dtype=np.float64)
    except (TypeError, ValueError):
        raise file_error(json_path, f"frame {index}: 'transform_matrix' is not a numeric 4x4 matrix") from None
    if pose.shape not in ((4, 4), (3, 4)) or not np.isfinite(pose).all():
        raise file_error(json_path, f"frame {index}: 'transform_matrix' must be a finite 4x4 matrix, got shape {pose.shape}")
    return pose[:3, :4]


def frame_file(frame: dict, json_path: Path, index: int) -> str:
    if "file_path" not in frame:
        raise file_error(json_path, f"frame {index} has no 'file_path'")
    return str(frame["file_path"])


def focal_from_angle(angle: float, size: float) -> float:
    return 0.5 * size / math.tan(0.5 * angle)


def check_positive(value: float, key: str, source: Path, where: str = "") -> float:
    """``value`` when it is a positive finite number (a focal length, an image size), else the
    one-line error naming ``source``, ``key`` and the value (``where``: e.g. ``frame 3: ``)."""
    if not math.isfinite(value) or value <= 0:
        raise file_error(source, f"{where}'{key}' must be positive, got {value:g}")
    return value


def check_angle(value: float, key: str, source: Path, where: str = "") -> float:
    """``value`` when it is a field of view in radians strictly between 0 and pi, else a one-line error."""
    if not math.isfinite(value) or not 0 < value < math.pi:
        raise file_error(source, f"{where}'{key}' must be a field of view in radians between 0 and pi, got {value:g}")
    return value


def number(data: dict, key: str, json_path: Path, default=None) -> float | None:
    """A numeric entry, or ``default`` when absent."""
    if key not in data:
        return default
    try:
        return float(data[key])
    except (TypeError, ValueError):
        raise file_error(json_path, f"'{key}' must be a number, got {data[key]!r}") from None


def check_size(path: Path, expected: tuple[int, int], json_path: Path) -> None:
    """Raise when an image's (width, height) disagrees with what the JSON says."""
    actual = image_size(path)
    if actual != expected:
        raise file_error(
            path, f"image is {actual[0]}x{actual[1]} but {json_path.name} says {expected[0]}x{expected[1]}"
        )


def load_pixels(paths: list[Path], downscale: float) -> torch.Tensor:
    """Decode images into one ``[N, H, W, C]`` uint8 tensor; all must share a size."""
    arrays = read_images(paths, downscale)
    channels = 4 if any(a.shape[-1] == 4 for a in arrays) else 3
    first = arrays[0].shape[:2]
    out = np.empty((len(arrays), first[0], first[1], channels), dtype=np.uint8)
    for i, (path, arr) in enumerate(zip(paths, arrays)):
        if arr.shape[:2] != first:
            raise file_error(path, f"image is {arr.shape[1]}x{arr.shape[0]}, others in this split are {first[1]}x{first[0]}")
        out[i, ..., :3] = arr[..., :3]
        if channels == 4:
            out[i, ..., 3] = arr[..., 3] if arr.shape[-1] == 4 else 255
    return torch.from_numpy(out)


def resolve(root: Path, file_path: str) -> Path:
    return resolve_image_path(root, file_path)


# instant-ngp-style files (instant-ngp and nerfstudio): intrinsics at the top level or per frame.

DISTORTION_KEYS = ("k1", "k2", "p1", "p2")


def _intrinsics(meta: dict, frame: dict, json_path: Path, image_path: Path, index: int) -> list[float]:
    """``[fx, fy, cx, cy, w, h, k1, k2, p1, p2]`` for frame ``index``; frame keys override the file's."""
    merged = {**meta, **{k: v for k, v in frame.items() if k != "frames"}}
    where = f"frame {index}: " if any(k in frame for k in ("w", "h", "fl_x", "fl_y", "camera_angle_x", "camera_angle_y")) else ""
    if "w" in merged and "h" in merged:
        w = check_positive(number(merged, "w", json_path), "w", json_path, where)
        h = check_positive(number(merged, "h", json_path), "h", json_path, where)
    else:
        w, h = map(float, image_size(image_path))
    fx = number(merged, "fl_x", json_path)
    if fx is None:
        angle = number(merged, "camera_angle_x", json_path)
        if angle is None:
            raise file_error(json_path, "no focal length: give 'fl_x' or 'camera_angle_x'")
        fx = focal_from_angle(check_angle(angle, "camera_angle_x", json_path, where), w)
    check_positive(fx, "fl_x", json_path, where)
    fy = number(merged, "fl_y", json_path)
    if fy is None:
        angle_y = number(merged, "camera_angle_y", json_path)
        fy = focal_from_angle(check_angle(angle_y, "camera_angle_y", json_path, where), h) if angle_y is not None else fx
    check_positive(fy, "fl_y", json_path, where)
    cx = number(merged, "cx", json_path, w / 2)
    cy = number(merged, "cy", json_path, h / 2)
    dist = [number(merged, k, json_path, 0.0) for k in DISTORTION_KEYS]
    return [fx, fy, cx, cy, w, h, *dist]


def present_frames(path: Path, meta: dict, json_path: Path) -> list[tuple[int, dict, Path]]:
    """``(index, frame, image file)`` of the frames whose image exists; one warning counts the others."""
    frames = []
    for i, frame in enumerate(meta["frames"]):
        file = resolve(path, frame_file(frame, json_path, i))
        if file.exists():
            frames.append((i, frame, file))
    missing = len(meta["frames"]) - len(frames)
    if missing:
        warnings.warn(f"{json_path}: skipped {missing} of {len(meta['frames'])} frames whose image file is missing", stacklevel=3)
    if not frames:
        raise file_error(json_path, "none of the frames' image files exist")
    return frames


def frame_cameras(meta: dict, frames: list[tuple[int, dict, Path]], json_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Poses ``[N, 3, 4]`` and intrinsics ``[N, 10]`` (``fx fy cx cy w h k1 k2 p1 p2``) of ``frames``."""
    poses = np.stack([frame_pose(f, json_path, i) for i, f, _ in frames])
    intr = np.array([_intrinsics(meta, f, json_path, file, i) for i, f, file in frames])
    return poses, intr
