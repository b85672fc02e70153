"""Write a posed dataset from a COLMAP model: ``transforms.json``, ``sparse_points.ply``, ``images_N/``.

The model is read back from ``sparse/0`` (as COLMAP wrote it, unnormalised) with the loaders'
own reader, so the dataset holds exactly what the files say. ``transforms.json`` follows
instant-ngp and nerfstudio:

* ``camera_model`` is always ``OPENCV`` (every model the pipeline fits is a special case of it);
  ``fl_x fl_y cx cy w h k1 k2 p1 p2`` at the top level for a shared camera, per frame otherwise;
* frames are the registered images in natural name order, ``transform_matrix`` camera-to-world in
  the OpenGL convention, *after* normalisation (mean camera up is +z, the scene is centred and
  the cameras and robust bounds of the sparse points fit ``[-0.9, 0.9]^3``,
  :func:`~neuralfields.data.normalize.normalize_poses`);
* ``applied_transform`` is the 3x4 similarity ``[s R | t]`` that maps COLMAP's world to the
  file's (scale included, so nerfstudio composes it correctly without an ``applied_scale``);
  ``normalization`` holds the same as ``scale``, ``rotation``, ``translation`` and ``box``;
* ``aabb_scale`` (instant-ngp's background extent) is 4 for object captures and 16 for unbounded
  and forward-facing ones unless given; ``scene_kind`` is :func:`~neuralfields.data.normalize.scene_kind`'s answer;
* ``ply_file_path`` names the normalised sparse points with their colours.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..atomic import write_json_atomic
from ..data.colmap import camera_intrinsics
from ..data.colmap_model import colmap_to_c2w, read_model
from ..data.images import read_image
from ..data.normalize import apply_transform, normalize_poses, scene_kind, transform_points
from .frames import natural_key

INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "k1", "k2", "p1", "p2")
AABB_SCALE = {"object": 4, "unbounded": 16, "forward": 16}
PLY_NAME = "sparse_points.ply"


@dataclass
class PosedCapture:
    """A COLMAP model as arrays, images in natural name order."""

    names: list[str]
    image_ids: list[int]
    c2w: np.ndarray  # [N, 4, 4] OpenGL camera-to-world, COLMAP's world
    intrinsics: np.ndarray  # [N, 10] fx fy cx cy w h k1 k2 p1 p2
    camera_ids: list[int]
    points: np.ndarray  # [P, 3]
    colors: np.ndarray  # [P, 3] uint8


def read_capture(model_dir: Path) -> PosedCapture:
    """The registered images, cameras and points of the COLMAP model in ``model_dir``."""
    cameras, images, points = read_model(model_dir)
    ordered = sorted(images.values(), key=lambda im: natural_key(im.name))
    source = model_dir / "cameras.bin"
    return PosedCapture(
        names=[im.name for im in ordered],
        image_ids=[im.id for im in ordered],
        c2w=np.stack([colmap_to_c2w(im.qvec, im.tvec) for im in ordered]),
        intrinsics=np.array([camera_intrinsics(cameras[im.camera_id], source) for im in ordered]),
        camera_ids=[im.camera_id for im in ordered],
        points=np.asarray(points.xyz, np.float64).reshape(-1, 3),
        colors=np.asarray(points.rgb, np.uint8).reshape(-1, 3),
    )


def _intrinsics_dict(row: np.ndarray) -> dict:
    out = {key: float(v) for key, v in zip(INTRINSIC_KEYS, row)}
    out["w"], out["h"] = int(round(out["w"])), int(round(out["h"]))
    return out


def transforms_dict(capture: PosedCapture, image_dir_name: str = "images", aabb_scale: int | None = None,
                    box: float = 1.0) -> tuple[dict, np.ndarray]:
    """The ``transforms.json`` content and the normalised points ``[P, 3]``."""
    transform = normalize_poses(capture.c2w, capture.points if len(capture.points) else None, box=box)
    c2w = apply_transform(capture.c2w, transform)
    points = transform_points(capture.points, transform)
    kind = scene_kind(c2w, points if len(points) else None)
    scale = float(np.cbrt(np.linalg.det(transform[:3, :3])))
    meta: dict = {"camera_model": "OPENCV"}
    shared = len(set(capture.camera_ids)) == 1
    if shared:
        meta.update(_intrinsics_dict(capture.intrinsics[0]))
    frames = []
    for i, name in enumerate(capture.names):
        frame = {"file_path": f"{image_dir_name}/{name}", "transform_matrix": c2w[i].tolist(),
                 "colmap_im_id": capture.image_ids[i]}
        if not shared:
            frame.update(_intrinsics_dict(capture.intrinsics[i]))
        frames.append(frame)
    meta.update({
        "aabb_scale": int(aabb_scale or AABB_SCALE[kind]),
        "scene_kind": kind,
        "applied_transform": transform[:3].tolist(),
        "normalization": {"scale": scale, "rotation": (transform[:3, :3] / scale).tolist(),
                          "translation": transform[:3, 3].tolist(), "box": box},
        "ply_file_path": PLY_NAME,
        "frames": frames,
    })
    return meta, points


def write_ply(path: Path, points: np.ndarray, colors: np.ndarray) -> Path:
    """Binary little-endian PLY: float ``x y z`` and uchar ``red green blue`` per vertex."""
    vertex = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    data = np.empty(len(points), dtype=vertex)
    for axis, name in enumerate("xyz"):
        data[name] = points[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        data[name] = colors[:, channel]
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\n"
              + "".join(f"property float {a}\n" for a in "xyz")
              + "".join(f"property uchar {c}\n" for c in ("red", "green", "blue")) + "end_header\n")
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())
    return path


def write_downscales(root: Path, names: list[str], factors: tuple[int, ...] = (2, 4, 8), progress: bool = True,
                     workers: int = 4) -> None:
    """``root/images_N/<name>`` at ``1/N`` of the size of ``root/images/<name>`` for each factor."""
    jobs = [(name, f) for f in factors for name in names]
    for f in factors:
        (root / f"images_{f}").mkdir(exist_ok=True)

    def shrink(job: tuple[str, int]) -> None:
        name, factor = job
        pixels = read_image(root / "images" / name, factor)
        Image.fromarray(pixels).save(root / f"images_{factor}" / name, quality=95)

    with ThreadPoolExecutor(workers) as pool:
        for _ in tqdm(pool.map(shrink, jobs), total=len(jobs), desc="downscales", unit="img", disable=not progress,
                      leave=False):
            pass


def write_dataset_files(root: Path, model_dir: Path, aabb_scale: int | None = None) -> dict:
    """``transforms.json`` (written last) and ``sparse_points.ply`` in ``root`` from the model in ``model_dir``."""
    capture = read_capture(model_dir)
    meta, points = transforms_dict(capture, aabb_scale=aabb_scale)
    write_ply(root / PLY_NAME, points, capture.colors)
    write_json_atomic(root / "transforms.json", meta, newline=True)
    return meta
