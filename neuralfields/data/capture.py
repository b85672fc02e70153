"""What the loaders of real captures (COLMAP, LLFF) share: choosing the image folder for a
downscale, holding out images, normalising and building the :class:`Scene`.

Captures keep full-size photos in ``images/`` and often smaller copies in ``images_N/`` (1/N of
the size, LLFF's and nerfstudio's convention); reading the small copies is much faster than
decoding and shrinking the full-size ones.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras
from ..errors import file_error
from .images import IMAGE_SUFFIXES, image_size
from .normalize import (apply_transform, normalize_forward, normalize_poses, point_near_depths, robust_bounds, scene_kind,
                        transform_points)
from .scene import Scene, split_indices
from .transforms import load_pixels

SCENE_HALF_SIZE = 1.0  # normalised captures fit in [-1, 1]^3 (with normalize_poses' margin inside)
FORWARD_BOX_MARGIN = 1.05  # forward-facing captures: the scene box holds cameras and points with this to spare


@dataclass
class ImageFolder:
    """Where to read images for a requested downscale.

    ``folder`` holds them, ``factor`` is how much smaller than full size they are on disk (1 for
    ``images/``, N for ``images_N/``), and ``downscale`` is what is left to apply on reading.
    """

    folder: Path
    factor: float
    downscale: float


def downscaled_folders(root: Path, stem: str = "images") -> dict[int, Path]:
    """``{N: root/stem_N}`` for the ``stem_N`` folders present."""
    out = {}
    for p in root.glob(f"{stem}_*"):
        match = re.fullmatch(re.escape(stem) + r"_(\d+)", p.name)
        if match and p.is_dir() and int(match.group(1)) > 1:
            out[int(match.group(1))] = p
    return dict(sorted(out.items()))


def choose_image_folder(root: Path, downscale: float, usable=lambda folder: True, stem: str = "images") -> ImageFolder:
    """The folder to read images from for ``downscale``.

    ``stem_N`` when ``downscale == N`` and it exists; else the full-size ``stem`` resized on reading;
    else (no full-size images) the largest ``stem_N`` with ``N <= downscale``, resized the rest of
    the way; else the largest images there are, with a warning. ``usable(folder)`` can reject a
    folder (e.g. one whose file names do not match the model's).
    """
    smaller = {n: p for n, p in downscaled_folders(root, stem).items() if usable(p)}
    if downscale == int(downscale) and int(downscale) in smaller:
        return ImageFolder(smaller[int(downscale)], float(downscale), 1.0)
    full = root / stem
    if full.is_dir() and usable(full):
        return ImageFolder(full, 1.0, downscale)
    below = [n for n in smaller if n <= downscale]
    if below:
        return ImageFolder(smaller[max(below)], float(max(below)), downscale / max(below))
    if smaller:
        n = min(smaller)
        warnings.warn(f"{root}: no images at 1/{downscale:g} size; using {smaller[n].name} (1/{n})", stacklevel=3)
        return ImageFolder(smaller[n], float(n), 1.0)
    if full.is_dir():
        return ImageFolder(full, 1.0, downscale)  # unusable, but the caller's error says why
    raise file_error(full, "image folder not found")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in IMAGE_SUFFIXES)


def find_image(folder: Path, name: str) -> Path | None:
    """``folder/name``, or the same name with another image suffix (LLFF's resized copies are PNG)."""
    path = folder / name
    if path.exists():
        return path
    for suffix in IMAGE_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate.exists():
            return candidate
    return None


def check_aspect(file: Path, width: float, height: float, source: Path) -> tuple[int, int]:
    """The image's (width, height) on disk; its aspect ratio must match the calibrated size."""
    w, h = image_size(file)
    sx, sy = w / width, h / height
    if abs(sx - sy) > 0.02 * max(sx, sy) + 1.0 / min(w, h):
        raise file_error(file, f"image is {w}x{h}, which is not {width:g}x{height:g} ({source.name}) scaled")
    return w, h


def normalized_capture(c2w: np.ndarray, points: np.ndarray | None, near: np.ndarray | None = None,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str, np.ndarray]:
    """Normalise cameras ``[N, 4, 4]`` and points ``[P, 3]``; ``near [N]``: the nearest depth each
    camera sees (LLFF or COLMAP bounds), which decides forward-facing captures with the cameras.

    Objects and unbounded captures fit the box ``[-1, 1]^3`` (:func:`normalize_poses`);
    forward-facing ones are normalised as NeRF does (:func:`normalize_forward`: the nearest depth
    becomes 1 / 0.75), and their scene box holds the cameras and the robust bounds of the points.
    Returns ``(transform [4, 4], c2w [N, 4, 4], points [P, 3] or None, kind, aabb [2, 3])``.
    """
    kind = scene_kind(c2w, points, near=near)
    has_points = points is not None and len(points) > 0
    if kind == "forward":
        nearest = near if near is not None else point_near_depths(c2w, points)
        transform = normalize_forward(c2w, float(np.min(nearest)))
    else:
        transform = normalize_poses(c2w, points, box=SCENE_HALF_SIZE)
    moved = apply_transform(c2w, transform)
    pts = transform_points(points, transform) if has_points else None
    aabb = np.array([[-SCENE_HALF_SIZE] * 3, [SCENE_HALF_SIZE] * 3])
    if kind == "forward":
        extent = np.concatenate([moved[:, :3, 3], robust_bounds(pts) if pts is not None else np.zeros((0, 3))])
        centre, half = 0.5 * (extent.min(0) + extent.max(0)), 0.5 * (extent.max(0) - extent.min(0))
        aabb = np.stack([centre - half * FORWARD_BOX_MARGIN, centre + half * FORWARD_BOX_MARGIN])
    return transform, moved, pts, kind, aabb


def float32(array: np.ndarray | None) -> torch.Tensor | None:
    """A float32 CPU tensor copy of a numpy array (None passes through)."""
    return None if array is None else torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def transform_scale(transform: np.ndarray) -> float:
    """The scale factor ``s`` of a similarity ``[4, 4]``."""
    return float(np.cbrt(np.linalg.det(np.asarray(transform)[:3, :3])))


def capture_scene(root: Path, split: str, fmt: str, c2w: np.ndarray, intrinsics: np.ndarray, files: list[Path],
                  source: Path, read_downscale: float, val_every: int, transform: np.ndarray, kind: str,
                  bounds: np.ndarray | None = None, points: np.ndarray | None = None,
                  aabb: np.ndarray | None = None) -> Scene:
    """Select ``split``'s images and build the scene.

    Args:
        c2w: ``[N, 4, 4]`` normalised camera-to-world (OpenGL).
        intrinsics: ``[N, 10]`` ``fx fy cx cy w h k1 k2 p1 p2`` for the calibrated image size.
        files: N image files, in the same order (sorted by name, the held-out protocol's order).
        source: the file the calibration came from, for error messages.
        read_downscale: resize factor still to apply to the files when decoding.
        transform: ``[4, 4]`` the normalisation applied; kind: ``object`` or ``unbounded``.
        bounds: optional ``[N, 2]`` near/far in scene units; points: optional ``[P, 3]`` in scene units.
        aabb: ``[2, 3]`` the scene box (default ``[-1, 1]^3``, where :func:`normalize_poses` fits captures).
    """
    keep = split_indices(len(files), split, val_every)
    files = [files[i] for i in keep]
    intr = intrinsics[keep]
    for file, row in zip(files, intr):
        check_aspect(file, row[4], row[5], source)
    cams = Cameras.create(c2w[keep], intr[:, 0], intr[:, 1], intr[:, 2], intr[:, 3], intr[:, 4], intr[:, 5], intr[:, 6:10])
    images = load_pixels(files, read_downscale)
    cams = cams.resized(images.shape[2], images.shape[1])
    half = SCENE_HALF_SIZE
    box = torch.tensor([[-half] * 3, [half] * 3], dtype=torch.float32) if aabb is None else float32(aabb)
    return Scene(images, cams, box, split, None, 1.0, [str(p) for p in files], root, fmt,
                 bounds=float32(None if bounds is None else bounds[keep]), kind=kind, points=float32(points),
                 transform=float32(transform))
