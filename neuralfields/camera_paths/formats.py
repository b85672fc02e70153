"""Camera path files: our keyframe JSON and nerfstudio's ``camera_path.json``.

Both formats are documented in docs/camera_paths.md. Keyframe files are interpolated like the
``interpolate`` path kind; nerfstudio files hold one camera per frame and are used as they are.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..cameras import look_at
from ..errors import file_error
from .kinds import (
    DEFAULT_FPS, DEFAULT_SECONDS, CameraPath, PathSettings, _frame_count, _time_track, _training_frame,
    cameras_from_poses, check_resolution, frame_size, vertical_fov,
)
from .rotations import interpolate_poses, interpolate_values

FORMAT_NAME = "neuralfields-camera-path"


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise file_error(path, "camera path file does not exist")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise file_error(path, f"malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise file_error(path, "expected a JSON object at the top level")
    return data


def _number(value, path: Path, what: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise file_error(path, f"{what} must be a number, got {value!r}")
    if positive and value <= 0:
        raise file_error(path, f"{what} must be positive, got {value}")
    return float(value)


def _matrix(value, path: Path, what: str) -> np.ndarray:
    """A ``3x4`` camera-to-world from nested lists (3x4 or 4x4) or a flat list of 12 or 16 numbers."""
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise file_error(path, f"{what} must be a 3x4 or 4x4 matrix of numbers") from None
    if m.ndim == 1 and m.size in (12, 16):
        m = m.reshape(-1, 4)
    if m.shape not in ((3, 4), (4, 4)) or not np.isfinite(m).all():
        raise file_error(path, f"{what} must be a 3x4 or 4x4 matrix of numbers, got shape {m.shape}")
    rot = m[:3, :3]
    scale = np.linalg.norm(rot, axis=0)
    if np.any(scale < 1e-9):
        raise file_error(path, f"{what} has a degenerate rotation")
    rot = rot / scale  # tolerate uniformly scaled rotations; rendering needs a pure rotation
    if abs(np.linalg.det(rot) - 1) > 1e-2:
        raise file_error(path, f"{what} is not a rotation (determinant {np.linalg.det(rot):.3f})")
    return np.concatenate([rot, m[:3, 3:]], 1)


def _keyframe_pose(key: dict, path: Path, where: str, up_default: np.ndarray) -> np.ndarray:
    if "c2w" in key:
        return _matrix(key["c2w"], path, f"{where} 'c2w'")
    if "position" in key and "look_at" in key:
        pos = _vector(key["position"], path, f"{where} 'position'")
        target = _vector(key["look_at"], path, f"{where} 'look_at'")
        up = _vector(key["up"], path, f"{where} 'up'") if "up" in key else up_default
        if np.linalg.norm(target - pos) < 1e-9:
            raise file_error(path, f"{where}: 'position' and 'look_at' coincide")
        if np.linalg.norm(np.cross(target - pos, up)) < 1e-9:
            raise file_error(path, f"{where}: view direction is parallel to 'up'")
        return look_at(torch.as_tensor(pos), torch.as_tensor(target), torch.as_tensor(up)).double().numpy()
    raise file_error(path, f"{where} needs 'c2w' or both 'position' and 'look_at'")


def _vector(value, path: Path, what: str) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        v = np.zeros(0)
    if v.shape != (3,) or not np.isfinite(v).all():
        raise file_error(path, f"{what} must be a list of 3 numbers")
    return v


def _size_from(data: dict, path: Path, wkey: str, hkey: str) -> tuple[int, int] | None:
    if wkey in data or hkey in data:
        if wkey not in data or hkey not in data:
            raise file_error(path, f"give both '{wkey}' and '{hkey}' or neither")
        w = _number(data[wkey], path, f"'{wkey}'", positive=True)
        h = _number(data[hkey], path, f"'{hkey}'", positive=True)
        check_resolution(int(w), int(h), str(path))
        return int(w), int(h)
    return None


def load_keyframes(path: Path, info, settings: PathSettings) -> CameraPath:
    """Our keyframe format (docs/camera_paths.md): poses interpolated like ``interpolate``."""
    data = _read_json(path)
    keys = data.get("keyframes")
    if not isinstance(keys, list) or not keys:
        raise file_error(path, "'keyframes' must be a non-empty list")
    frame = _training_frame(info)
    poses, fovs, times = [], [], []
    for i, key in enumerate(keys):
        where = f"keyframe {i}"
        if not isinstance(key, dict):
            raise file_error(path, f"{where} must be an object")
        poses.append(_keyframe_pose(key, path, where, frame.up))
        fov = _number(key["fov"], path, f"{where} 'fov'", positive=True) if "fov" in key else (settings.fov or frame.fov)
        if fov >= 180:
            raise file_error(path, f"{where} 'fov' must be below 180 degrees, got {fov}")
        fovs.append(fov)
        if "time" in key:
            times.append(_number(key["time"], path, f"{where} 'time'"))
    if times and len(times) != len(keys):
        raise file_error(path, "give 'time' on every keyframe or on none")
    if any(not 0 <= t <= 1 for t in times):
        raise file_error(path, "keyframe times must lie in [0, 1]")
    closed = bool(data.get("loop", False))
    fps = _number(data["fps"], path, "'fps'", positive=True) if "fps" in data else None
    seconds = _number(data["seconds"], path, "'seconds'", positive=True) if "seconds" in data else None
    n, fps = _frame_count(settings, fps, seconds)
    w, h = frame_size(frame, settings, _size_from(data, path, "width", "height"))
    c2w, seg, u = interpolate_poses(np.stack(poses), n, closed)
    fov = interpolate_values(np.array(fovs), seg, u, closed)
    if settings.fov is not None:
        fov = np.full(n, settings.fov)
    file_times = interpolate_values(np.array(times), seg, u, closed) if times else None
    return CameraPath(cameras_from_poses(c2w, fov, w, h), fps, _time_track(info, settings, n, file_times), "keyframes")


def load_nerfstudio(path: Path, info, settings: PathSettings) -> CameraPath:
    """nerfstudio's ``camera_path.json``: one entry per frame, used as it is (no resampling).

    ``camera_to_world`` is a flattened 4x4 in the OpenGL convention (ours), ``fov`` the vertical
    field of view in degrees, ``render_time`` an optional per-frame time (all frames or none).
    """
    data = _read_json(path)
    entries = data["camera_path"]
    if not isinstance(entries, list) or not entries:
        raise file_error(path, "'camera_path' must be a non-empty list")
    frame = _training_frame(info)
    size = _size_from(data, path, "render_width", "render_height")
    poses, fovs, times = [], [], []
    for i, cam in enumerate(entries):
        where = f"camera_path[{i}]"
        if not isinstance(cam, dict) or "camera_to_world" not in cam:
            raise file_error(path, f"{where} needs 'camera_to_world'")
        poses.append(_matrix(cam["camera_to_world"], path, f"{where} 'camera_to_world'"))
        fovs.append(_number(cam["fov"], path, f"{where} 'fov'", positive=True) if "fov" in cam else frame.fov)
        if "render_time" in cam:
            times.append(_number(cam["render_time"], path, f"{where} 'render_time'"))
        if size is None and "aspect" in cam:
            aspect = _number(cam["aspect"], path, f"{where} 'aspect'", positive=True)
            size = (max(1, round(frame.height * aspect)), frame.height)
    if times and len(times) != len(entries):
        times = []  # nerfstudio itself ignores times unless every frame has one
    fps = _number(data["fps"], path, "'fps'", positive=True) if "fps" in data else None
    if fps is None and "seconds" in data:
        fps = len(entries) / _number(data["seconds"], path, "'seconds'", positive=True)
    fps = settings.fps or fps or DEFAULT_FPS
    w, h = frame_size(frame, settings, size)
    fov = np.full(len(entries), settings.fov) if settings.fov is not None else np.array(fovs)
    file_times = np.array(times) if times else None
    cams = cameras_from_poses(np.stack(poses), fov, w, h)
    return CameraPath(cams, fps, _time_track(info, settings, len(entries), file_times), "nerfstudio")


def load_path_file(path: str | Path, info, settings: PathSettings | None = None) -> CameraPath:
    """Read a camera path file, telling nerfstudio's format (``camera_path`` key) from ours (``keyframes``)."""
    path, settings = Path(path), settings or PathSettings()
    data = _read_json(path)
    if "camera_path" in data:  # checked first: nerfstudio files also carry their editor's 'keyframes'
        return load_nerfstudio(path, info, settings)
    if "keyframes" in data:
        return load_keyframes(path, info, settings)
    raise file_error(path, "not a camera path: expected a 'keyframes' list (ours) or 'camera_path' (nerfstudio)")


def save_keyframes(path: str | Path, c2w: Tensor | np.ndarray, fov: float | list[float], width: int, height: int,
                   fps: float = DEFAULT_FPS, seconds: float = DEFAULT_SECONDS, times: list[float] | None = None,
                   loop: bool = False) -> Path:
    """Write keyframes ``c2w [K, 3|4, 4]`` in our format (the viewer saves paths this way)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    fovs = np.broadcast_to(np.asarray(fov, dtype=np.float64), (len(c2w),))
    keys = []
    for i, m in enumerate(c2w):
        key = {"c2w": m[:3, :4].round(8).tolist(), "fov": float(fovs[i])}
        if times is not None:
            key["time"] = float(times[i])
        keys.append(key)
    data = {"format": FORMAT_NAME, "version": 1, "width": int(width), "height": int(height), "fps": fps,
            "seconds": seconds, "loop": loop, "keyframes": keys}
    path = Path(path)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def save_nerfstudio(path: str | Path, camera_path: CameraPath) -> Path:
    """Write every frame of ``camera_path`` as nerfstudio's ``camera_path.json`` (atomically).

    Per frame: ``camera_to_world`` (flattened 4x4, OpenGL axes as ours), vertical ``fov`` in
    degrees, ``aspect`` and, for dynamic paths, ``render_time``; :func:`load_nerfstudio` reads
    the frames back as they are.
    """
    from ..run.folder import write_json_atomic

    cams = camera_path.cameras
    c2w = cams.c2w.double().cpu().numpy()
    fovs = vertical_fov(cams).double().cpu().numpy()
    bottom = np.array([[0.0, 0.0, 0.0, 1.0]])
    entries = []
    for i in range(len(camera_path)):
        entry = {"camera_to_world": np.concatenate([c2w[i], bottom]).round(8).reshape(-1).tolist(),
                 "fov": float(fovs[i]), "aspect": camera_path.width / camera_path.height}
        if camera_path.times is not None:
            entry["render_time"] = camera_path.time(i)
        entries.append(entry)
    data = {"camera_type": "perspective", "render_width": camera_path.width, "render_height": camera_path.height,
            "fps": camera_path.fps, "seconds": len(camera_path) / camera_path.fps, "camera_path": entries}
    path = Path(path)
    write_json_atomic(path, data)
    return path
