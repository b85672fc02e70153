"""Shared parsing of ``transforms*.json`` files (NeRF-synthetic, D-NeRF and instant-ngp layouts)."""

from __future__ import annotations

import json
import math
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
