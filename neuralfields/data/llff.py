"""LLFF layout: ``poses_bounds.npy`` beside ``images/`` and/or ``images_N/``.

Each of the N rows holds 17 numbers: a 3x5 matrix (row-major) whose first four columns are a
camera-to-world pose with rotation columns (down, right, backwards), and whose last column is
``[h, w, f]`` of the full-size images, followed by the near and far depth of the scene in that
view. The pose becomes OpenGL camera-to-world as ``[right, -down, backwards, centre]``.

Images are matched to rows by sorted file name (LLFF's own convention), from ``images_N`` when
``downscale == N`` and it exists, else from the closest folder present (``llff/fern`` ships only
``images_8`` and ``images_16``); intrinsics are the file's ``f`` and a centred principal point,
scaled to the size of the images read. The near/far bounds become ``Scene.bounds`` and bound the
scene: the view frustums between near and far are kept inside the normalised box (see
:mod:`.normalize`). Forward-facing captures (LLFF's own kind: every camera looks the same way and
the near bounds lie in front of all of them) are normalised as NeRF does instead: the nearest
near bound becomes 1 / 0.75, the near plane of NDC depth 1, and the scene box holds the
frustums. Every ``val_every``-th image is held out for val/test.

When a folder has both, the COLMAP model wins auto-detection (it has distortion, per-image
intrinsics and sparse points); ``format = "llff"`` forces this loader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import file_error
from . import register_format
from .capture import capture_scene, choose_image_folder, list_images, normalized_capture, transform_scale
from .scene import Scene
from .transforms import check_positive

POSES_FILE = "poses_bounds.npy"


def detect(path: Path) -> bool:
    return (path / POSES_FILE).exists()


def read_poses_bounds(npy: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(c2w [N, 4, 4] OpenGL, hwf [N, 3] (h, w, f) of the full-size images, bounds [N, 2])``."""
    try:
        data = np.load(npy, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise file_error(npy, f"cannot read ({exc})") from None
    if data.ndim != 2 or data.shape[1] != 17 or len(data) == 0:
        raise file_error(npy, f"expected an array of shape [N, 17], got {list(data.shape)}")
    data = data.astype(np.float64)
    if not np.isfinite(data).all():
        raise file_error(npy, "contains non-finite values")
    mat = data[:, :15].reshape(-1, 3, 5)
    for row, (h, w, f) in enumerate(mat[:, :, 4]):
        for key, value in (("h", h), ("w", w), ("f", f)):
            check_positive(float(value), key, npy, f"row {row} (hwf): ")
    down, right, back, centre = (mat[:, :, i] for i in range(4))
    c2w = np.zeros((len(data), 4, 4))
    c2w[:, :3, :4] = np.stack([right, -down, back, centre], axis=2)
    c2w[:, 3, 3] = 1.0
    return c2w, mat[:, :, 4], data[:, 15:17]


def frustum_points(c2w: np.ndarray, hwf: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Corners and centre of each view's frustum at its near and far depth: ``[N * 10, 3]``."""
    h, w, f = hwf[:, 0], hwf[:, 1], hwf[:, 2]
    sx, sy = 0.5 * w / f, 0.5 * h / f
    offsets = np.array([[0, 0], [-1, -1], [-1, 1], [1, -1], [1, 1]], np.float64)
    out = []
    for depth in (bounds[:, 0], bounds[:, 1]):
        # OpenGL camera space: x right, y up, looking along -z.
        cam = np.stack([offsets[None, :, 0] * sx[:, None], offsets[None, :, 1] * sy[:, None],
                        -np.ones((len(f), 5))], axis=2) * depth[:, None, None]
        out.append(np.einsum("nij,nkj->nki", c2w[:, :3, :3], cam) + c2w[:, None, :3, 3])
    return np.concatenate(out, axis=1).reshape(-1, 3)


@register_format("llff", detect)
def load(path: Path, split: str, downscale: float = 1.0, val_every: int = 8, **_) -> Scene:
    npy = path / POSES_FILE
    if not npy.exists():
        raise file_error(npy, "file not found")
    c2w, hwf, bounds = read_poses_bounds(npy)
    n = len(c2w)
    where = choose_image_folder(path, downscale)
    files = list_images(where.folder)
    if len(files) != n:
        raise file_error(where.folder, f"has {len(files)} images but {npy.name} has {n} poses")
    transform, c2w, _, kind, aabb = normalized_capture(c2w, frustum_points(c2w, hwf, bounds), near=bounds[:, 0])
    h, w, f = hwf[:, 0], hwf[:, 1], hwf[:, 2]
    zeros = np.zeros(n)
    intrinsics = np.stack([f, f, w / 2, h / 2, w, h, zeros, zeros, zeros, zeros], axis=1)
    return capture_scene(path, split, "llff", c2w, intrinsics, files, npy, where.downscale, val_every,
                         transform, kind, bounds * transform_scale(transform), aabb=aabb)
