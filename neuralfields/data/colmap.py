"""COLMAP layout: a sparse model in ``sparse/0/`` (or ``sparse/``) beside ``images/`` (and ``images_N/``).

The model (``cameras``, ``images``, ``points3D`` as ``.bin`` or ``.txt``, read by
:mod:`.colmap_model`) gives per-image world-to-camera poses in OpenCV axes, converted here to
camera-to-world OpenGL, and intrinsics for the calibrated image size, rescaled to the size of the
images actually read (``images_N/`` when ``downscale == N`` and it exists). Camera models
SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL and OPENCV are supported (their distortion is the
OpenCV ``k1 k2 p1 p2`` model); others stop with an error naming the model.

Images are sorted by name; every ``val_every``-th is held out for val/test. Images registered
in the model but absent from disk are skipped with one warning that counts them. Cameras and
sparse points are normalised into ``[-1, 1]^3`` (:mod:`.normalize`; forward-facing captures as
NeRF normalises them); per-image near/far bounds come from the depths of the points each image
sees (0.1 and 99.9 percentiles, as LLFF computes them).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import file_error
from . import register_format
from .capture import capture_scene, choose_image_folder, find_image, normalized_capture, transform_scale
from .colmap_model import ColmapCamera, ColmapImage, ColmapPoints, colmap_to_c2w, find_model, qvec_to_rotmat, read_model
from .scene import Scene
from .transforms import check_positive

MODEL_FOLDERS = ("sparse/0", "sparse")
SUPPORTED_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")


def model_folder(path: Path) -> tuple[Path, str] | None:
    """``(folder, ext)`` of the dataset's sparse model, if it has a complete one."""
    for sub in MODEL_FOLDERS:
        found = find_model(path / sub)
        if found is not None:
            return found
    return None


def detect(path: Path) -> bool:
    # A complete model, or a sparse/ folder with nothing else to go by (the loader then says what
    # is missing). An incomplete model beside poses_bounds.npy is left to the LLFF loader.
    if model_folder(path) is not None:
        return True
    return (path / "sparse").is_dir() and not (path / "poses_bounds.npy").exists()


def _missing_model_error(path: Path):
    for sub in MODEL_FOLDERS:
        folder = path / sub
        present = [f"{name}{ext}" for name in ("cameras", "images") for ext in (".bin", ".txt") if (folder / f"{name}{ext}").exists()]
        if present:
            return file_error(folder, f"incomplete COLMAP model: has {', '.join(present)} but needs cameras and images (.bin or .txt)")
    return file_error(path / "sparse", "no COLMAP model found (expected cameras and images .bin or .txt in sparse/0 or sparse)")


def camera_intrinsics(cam: ColmapCamera, source: Path) -> list[float]:
    """``[fx, fy, cx, cy, w, h, k1, k2, p1, p2]`` of a COLMAP camera."""
    p = [float(v) for v in cam.params]
    if cam.model == "SIMPLE_PINHOLE":
        f, cx, cy = p
        fx, fy, dist = f, f, [0.0] * 4
    elif cam.model == "PINHOLE":
        fx, fy, cx, cy = p
        dist = [0.0] * 4
    elif cam.model == "SIMPLE_RADIAL":
        f, cx, cy, k = p
        fx, fy, dist = f, f, [k, 0.0, 0.0, 0.0]
    elif cam.model == "RADIAL":
        f, cx, cy, k1, k2 = p
        fx, fy, dist = f, f, [k1, k2, 0.0, 0.0]
    elif cam.model == "OPENCV":
        fx, fy, cx, cy, *dist = p
    else:
        raise file_error(source, f"camera {cam.id} uses the {cam.model} camera model, which is not supported "
                                 f"(supported: {', '.join(SUPPORTED_MODELS)})")
    where = f"camera {cam.id} ({cam.model}): "
    for key, value in (("width", float(cam.width)), ("height", float(cam.height)), ("fx", fx), ("fy", fy)):
        check_positive(value, key, source, where)
    return [fx, fy, cx, cy, float(cam.width), float(cam.height), *dist]


def image_bounds(images: list[ColmapImage], points: ColmapPoints) -> np.ndarray | None:
    """Near/far depth ``[N, 2]`` per image from the points it observes (None without points).

    Images that see no point get the extremes over all images.
    """
    if len(points) == 0:
        return None
    index = {int(pid): i for i, pid in enumerate(points.ids)}
    bounds = np.full((len(images), 2), np.nan)
    for row, image in enumerate(images):
        seen = [index[int(p)] for p in image.point3d_ids if p >= 0 and int(p) in index]
        if not seen:
            continue
        depth = points.xyz[seen] @ qvec_to_rotmat(image.qvec)[2] + image.tvec[2]  # z in OpenCV camera axes
        depth = depth[depth > 0]
        if len(depth):
            bounds[row] = np.percentile(depth, [0.1, 99.9])
    if np.isnan(bounds).all():
        return None
    lo, hi = np.nanmin(bounds[:, 0]), np.nanmax(bounds[:, 1])
    bounds[np.isnan(bounds[:, 0])] = [lo, hi]
    return bounds


@register_format("colmap", detect)
def load(path: Path, split: str, downscale: float = 1.0, val_every: int = 8, **_) -> Scene:
    found = model_folder(path)
    if found is None:
        raise _missing_model_error(path)
    folder, ext = found
    cameras, images_by_id, points = read_model(folder, ext)
    if not images_by_id:
        raise file_error(folder / f"images{ext}", "the model has no registered images")
    images = sorted(images_by_id.values(), key=lambda im: im.name)
    intrinsics = np.array([camera_intrinsics(cameras[im.camera_id], folder / f"cameras{ext}") for im in images])
    c2w = np.stack([colmap_to_c2w(im.qvec, im.tvec) for im in images])
    # Normalise with every registered image, so all splits (and any missing files) share one frame.
    bounds = image_bounds(images, points)
    transform, c2w, pts, kind, aabb = normalized_capture(c2w, points.xyz if len(points) else None,
                                                         near=None if bounds is None else bounds[:, 0])
    if bounds is not None:
        bounds = bounds * transform_scale(transform)

    names = [im.name for im in images]
    where = choose_image_folder(path, downscale, usable=lambda f: any(find_image(f, n) for n in names[:8]))
    files = [find_image(where.folder, n) for n in names]
    present = [i for i, f in enumerate(files) if f is not None]
    if not present:
        raise file_error(where.folder, f"none of the {len(files)} images of the COLMAP model ({folder.name}) are here")
    if len(present) < len(files):
        warnings.warn(f"{where.folder}: skipped {len(files) - len(present)} of {len(files)} images of the "
                      f"COLMAP model whose file is missing", stacklevel=2)
    return capture_scene(path, split, "colmap", c2w[present], intrinsics[present], [files[i] for i in present],
                         folder / f"cameras{ext}", where.downscale, val_every, transform, kind,
                         None if bounds is None else bounds[present], pts, aabb=aabb)
