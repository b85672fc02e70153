"""Read and write COLMAP sparse models (``cameras``, ``images``, ``points3D``) as ``.bin`` or ``.txt``.

Pure Python and numpy, following COLMAP's documented formats: binary files are little-endian,
cameras store their model as an id (``.bin``) or a name (``.txt``) followed by a model-specific
number of parameters; images store a world-to-camera pose (unit quaternion ``qw qx qy qz`` and
translation) in OpenCV camera axes (x right, y down, looking along +z) and their 2D keypoints;
points store position, colour, reprojection error and track. :func:`colmap_to_c2w` converts a
pose to this project's camera-to-world OpenGL convention.

Reading never interprets the camera models beyond their parameter count, so a model the
loaders cannot use still reads and the loader can name it in its error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import file_error

# COLMAP's camera models: id -> (name, number of parameters).
CAMERA_MODELS: dict[int, tuple[str, int]] = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
MODEL_IDS = {name: (i, n) for i, (name, n) in CAMERA_MODELS.items()}

MODEL_FILES = ("cameras", "images", "points3D")


@dataclass
class ColmapCamera:
    """One COLMAP camera: ``model`` name, image size and ``params`` ``[K]`` (model-specific order)."""

    id: int
    model: str
    width: int
    height: int
    params: np.ndarray


@dataclass
class ColmapImage:
    """One registered image: world-to-camera ``qvec`` ``[4]`` (w, x, y, z) and ``tvec`` ``[3]``.

    ``xys`` ``[K, 2]`` are its keypoints in pixels and ``point3d_ids`` ``[K]`` the point each one
    observes (-1 for none).
    """

    id: int
    qvec: np.ndarray
    tvec: np.ndarray
    camera_id: int
    name: str
    xys: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point3d_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class ColmapPoints:
    """All sparse points, column-wise: ``ids`` ``[P]``, ``xyz`` ``[P, 3]`` float64, ``rgb`` ``[P, 3]``
    uint8, ``error`` ``[P]``, and ``tracks``: per point an ``[L, 2]`` int array of (image id,
    keypoint index)."""

    ids: np.ndarray
    xyz: np.ndarray
    rgb: np.ndarray
    error: np.ndarray
    tracks: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def empty() -> "ColmapPoints":
        return ColmapPoints(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3), np.uint8), np.zeros(0), [])


# ----------------------------------------------------------------------------- poses


def qvec_to_rotmat(qvec: np.ndarray) -> np.ndarray:
    """Rotation ``[3, 3]`` of a quaternion ``[4]`` (w, x, y, z); normalised first."""
    w, x, y, z = np.asarray(qvec, np.float64) / np.linalg.norm(qvec)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def rotmat_to_qvec(rot: np.ndarray) -> np.ndarray:
    """Unit quaternion ``[4]`` (w, x, y, z, with w >= 0) of a rotation ``[3, 3]``."""
    # The eigenvector of the largest eigenvalue of Bar-Itzhack's symmetric matrix: stable for any angle.
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = np.asarray(rot, np.float64)
    k = np.array([
        [r00 - r11 - r22, 0, 0, 0],
        [r01 + r10, r11 - r00 - r22, 0, 0],
        [r02 + r20, r12 + r21, r22 - r00 - r11, 0],
        [r21 - r12, r02 - r20, r10 - r01, r00 + r11 + r22],
    ]) / 3.0
    vals, vecs = np.linalg.eigh(k)
    x, y, z, w = vecs[:, np.argmax(vals)]
    q = np.array([w, x, y, z])
    return q if w >= 0 else -q


def colmap_to_c2w(qvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """Camera-to-world ``[4, 4]`` in the OpenGL convention from a COLMAP world-to-camera pose."""
    rot = qvec_to_rotmat(qvec)
    c2w = np.eye(4)
    c2w[:3, :3] = rot.T
    c2w[:3, 3] = -rot.T @ np.asarray(tvec, np.float64)
    c2w[:3, 1:3] *= -1  # OpenCV (y down, looking along +z) -> OpenGL (y up, looking along -z)
    return c2w


def c2w_to_colmap(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`colmap_to_c2w`: ``(qvec [4], tvec [3])`` from an OpenGL camera-to-world."""
    c2w = np.asarray(c2w, np.float64)[:3, :4].copy()
    c2w[:, 1:3] *= -1
    rot = c2w[:, :3].T
    return rotmat_to_qvec(rot), -rot @ c2w[:, 3]


# ----------------------------------------------------------------------------- reading


def find_model(folder: Path) -> tuple[Path, str] | None:
    """``(folder, ext)`` when ``folder`` holds ``cameras`` and ``images`` as ``.bin`` or ``.txt``."""
    for ext in (".bin", ".txt"):
        if (folder / f"cameras{ext}").exists() and (folder / f"images{ext}").exists():
            return folder, ext
    return None


def read_model(folder: str | Path, ext: str | None = None
               ) -> tuple[dict[int, ColmapCamera], dict[int, ColmapImage], ColmapPoints]:
    """Read a sparse model: ``(cameras by id, images by id, points)``.

    ``ext`` (``.bin`` or ``.txt``) defaults to whichever complete set the folder holds. A missing
    ``points3D`` file reads as no points (it is optional for posing images).
    """
    folder = Path(folder)
    if ext is None:
        found = find_model(folder)
        if found is None:
            raise file_error(folder, "no COLMAP model here (expected cameras.bin and images.bin, or the .txt pair)")
        ext = found[1]
    binary = ext == ".bin"
    cameras = _read(folder / f"cameras{ext}", _read_cameras_bin if binary else _read_cameras_txt)
    images = _read(folder / f"images{ext}", _read_images_bin if binary else _read_images_txt)
    points_path = folder / f"points3D{ext}"
    points = _read(points_path, _read_points_bin if binary else _read_points_txt) if points_path.exists() else ColmapPoints.empty()
    for image in images.values():
        if image.camera_id not in cameras:
            raise file_error(folder / f"images{ext}", f"image '{image.name}' refers to camera {image.camera_id}, which cameras{ext} does not have")
    return cameras, images, points


def _read(path: Path, reader):
    """Run a reader with errors naming the file (truncated or malformed files are common)."""
    if not path.exists():
        raise file_error(path, "file not found")
    try:
        if path.suffix == ".bin":
            with open(path, "rb") as f:
                return reader(f, path)
        return reader(path.read_text().splitlines(), path)
    except (struct.error, EOFError):
        raise file_error(path, "truncated or malformed COLMAP binary file") from None
    except (ValueError, IndexError) as exc:
        raise file_error(path, f"malformed COLMAP file ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise file_error(path, f"cannot read ({exc})") from None


def _unpack(f: BinaryIO, fmt: str) -> tuple:
    fmt = "<" + fmt
    data = f.read(struct.calcsize(fmt))
    return struct.unpack(fmt, data)


def _array(f: BinaryIO, dtype: str, count: int) -> np.ndarray:
    dtype = np.dtype(dtype).newbyteorder("<")
    data = f.read(dtype.itemsize * count)
    if len(data) != dtype.itemsize * count:
        raise EOFError
    return np.frombuffer(data, dtype=dtype).copy()


def _read_cameras_bin(f: BinaryIO, path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    for _ in range(_unpack(f, "Q")[0]):
        cam_id, model_id, width, height = _unpack(f, "iiQQ")
        if model_id not in CAMERA_MODELS:
            raise file_error(path, f"camera {cam_id} has unknown camera model id {model_id}")
        name, n_params = CAMERA_MODELS[model_id]
        cameras[cam_id] = ColmapCamera(cam_id, name, width, height, _array(f, "f8", n_params))
    return cameras


def _read_string(f: BinaryIO) -> str:
    chars = bytearray()
    while (c := f.read(1)) != b"\x00":
        if not c:
            raise EOFError
        chars += c
    return chars.decode("utf-8")


def _read_images_bin(f: BinaryIO, path: Path) -> dict[int, ColmapImage]:
    images = {}
    for _ in range(_unpack(f, "Q")[0]):
        image_id, qw, qx, qy, qz, tx, ty, tz, cam_id = _unpack(f, "idddddddi")
        name = _read_string(f)
        n_points = _unpack(f, "Q")[0]
        rows = _array(f, np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")]), n_points)
        images[image_id] = ColmapImage(image_id, np.array([qw, qx, qy, qz]), np.array([tx, ty, tz]), cam_id, name,
                                       np.stack([rows["x"], rows["y"]], 1), rows["id"].astype(np.int64))
    return images


def _read_points_bin(f: BinaryIO, path: Path) -> ColmapPoints:
    n = _unpack(f, "Q")[0]
    ids, xyz, rgb, err, tracks = np.zeros(n, np.int64), np.zeros((n, 3)), np.zeros((n, 3), np.uint8), np.zeros(n), []
    head = np.dtype([("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3), ("error", "<f8"), ("length", "<u8")])
    for i in range(n):
        row = _array(f, head, 1)[0]
        ids[i], xyz[i], rgb[i], err[i] = row["id"], row["xyz"], row["rgb"], row["error"]
        tracks.append(_array(f, "<i4", 2 * int(row["length"])).reshape(-1, 2).astype(np.int64))
    return ColmapPoints(ids, xyz, rgb, err, tracks)


def _data_lines(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _read_cameras_txt(lines: list[str], path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    for line in _data_lines(lines):
        parts = line.split()
        cam_id, model, width, height = int(parts[0]), parts[1], int(parts[2]), int(parts[3])
        params = np.array([float(p) for p in parts[4:]])
        if model in MODEL_IDS and len(params) != MODEL_IDS[model][1]:
            raise file_error(path, f"camera {cam_id} ({model}) has {len(params)} parameters, expected {MODEL_IDS[model][1]}")
        cameras[cam_id] = ColmapCamera(cam_id, model, width, height, params)
    return cameras


def _read_images_txt(lines: list[str], path: Path) -> dict[int, ColmapImage]:
    # Two lines per image; the keypoint line may be empty, so blank lines only separate records
    # where a header is expected.
    images = {}
    rows = [line.strip() for line in lines if not line.lstrip().startswith("#")]
    i = 0
    while i < len(rows):
        if not rows[i]:
            i += 1
            continue
        parts = rows[i].split()
        if len(parts) < 10:
            raise ValueError(f"image line '{rows[i]}' has fewer than 10 fields")
        image_id, cam_id = int(parts[0]), int(parts[8])
        qvec = np.array([float(p) for p in parts[1:5]])
        tvec = np.array([float(p) for p in parts[5:8]])
        name = " ".join(parts[9:])  # names may contain spaces
        keypoints = rows[i + 1].split() if i + 1 < len(rows) else []
        kp = np.array([float(p) for p in keypoints]).reshape(-1, 3)
        images[image_id] = ColmapImage(image_id, qvec, tvec, cam_id, name, kp[:, :2], kp[:, 2].astype(np.int64))
        i += 2
    return images


def _read_points_txt(lines: list[str], path: Path) -> ColmapPoints:
    rows = [line.split() for line in _data_lines(lines)]
    ids = np.array([int(r[0]) for r in rows], np.int64)
    xyz = np.array([[float(v) for v in r[1:4]] for r in rows]).reshape(-1, 3)
    rgb = np.array([[int(v) for v in r[4:7]] for r in rows], np.uint8).reshape(-1, 3)
    err = np.array([float(r[7]) for r in rows])
    tracks = [np.array([int(v) for v in r[8:]], np.int64).reshape(-1, 2) for r in rows]
    return ColmapPoints(ids, xyz, rgb, err, tracks)


# ----------------------------------------------------------------------------- writing


def write_model(folder: str | Path, cameras: dict[int, ColmapCamera], images: dict[int, ColmapImage],
                points: ColmapPoints | None = None, ext: str = ".bin") -> Path:
    """Write a sparse model as ``cameras``, ``images`` and ``points3D`` with ``ext`` (``.bin`` or ``.txt``).

    Returns the folder (created if needed).
    """
    if ext not in (".bin", ".txt"):
        raise ValueError(f"ext must be '.bin' or '.txt', got {ext!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    points = points if points is not None else ColmapPoints.empty()
    if ext == ".bin":
        (folder / "cameras.bin").write_bytes(_cameras_bin(cameras))
        (folder / "images.bin").write_bytes(_images_bin(images))
        (folder / "points3D.bin").write_bytes(_points_bin(points))
    else:
        (folder / "cameras.txt").write_text(_cameras_txt(cameras))
        (folder / "images.txt").write_text(_images_txt(images))
        (folder / "points3D.txt").write_text(_points_txt(points))
    return folder


def _cameras_bin(cameras: dict[int, ColmapCamera]) -> bytes:
    out = [struct.pack("<Q", len(cameras))]
    for cam in cameras.values():
        if cam.model not in MODEL_IDS:
            raise ValueError(f"unknown COLMAP camera model {cam.model!r}")
        model_id, n_params = MODEL_IDS[cam.model]
        if len(cam.params) != n_params:
            raise ValueError(f"camera {cam.id} ({cam.model}) needs {n_params} parameters, got {len(cam.params)}")
        out.append(struct.pack("<iiQQ", cam.id, model_id, cam.width, cam.height))
        out.append(np.asarray(cam.params, "<f8").tobytes())
    return b"".join(out)


def _images_bin(images: dict[int, ColmapImage]) -> bytes:
    out = [struct.pack("<Q", len(images))]
    for im in images.values():
        out.append(struct.pack("<idddddddi", im.id, *map(float, im.qvec), *map(float, im.tvec), im.camera_id))
        out.append(im.name.encode("utf-8") + b"\x00")
        rows = np.zeros(len(im.point3d_ids), np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")]))
        rows["x"], rows["y"], rows["id"] = im.xys[:, 0], im.xys[:, 1], im.point3d_ids
        out.append(struct.pack("<Q", len(rows)) + rows.tobytes())
    return b"".join(out)


def _points_bin(points: ColmapPoints) -> bytes:
    out = [struct.pack("<Q", len(points))]
    for i in range(len(points)):
        track = np.asarray(points.tracks[i], "<i4").reshape(-1, 2)
        out.append(struct.pack("<Q3d3BdQ", int(points.ids[i]), *map(float, points.xyz[i]), *map(int, points.rgb[i]),
                               float(points.error[i]), len(track)))
        out.append(track.tobytes())
    return b"".join(out)


def _cameras_txt(cameras: dict[int, ColmapCamera]) -> str:
    lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
             f"# Number of cameras: {len(cameras)}"]
    for cam in cameras.values():
        lines.append(" ".join([str(cam.id), cam.model, str(cam.width), str(cam.height), *map(repr, map(float, cam.params))]))
    return "\n".join(lines) + "\n"


def _images_txt(images: dict[int, ColmapImage]) -> str:
    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
             "#   POINTS2D[] as (X, Y, POINT3D_ID)", f"# Number of images: {len(images)}"]
    for im in images.values():
        lines.append(" ".join([str(im.id), *map(repr, map(float, im.qvec)), *map(repr, map(float, im.tvec)),
                               str(im.camera_id), im.name]))
        lines.append(" ".join(f"{float(x)!r} {float(y)!r} {int(p)}" for (x, y), p in zip(im.xys, im.point3d_ids)))
    return "\n".join(lines) + "\n"


def _points_txt(points: ColmapPoints) -> str:
    lines = ["# 3D point list with one line of data per point:",
             "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
             f"# Number of points: {len(points)}"]
    for i in range(len(points)):
        track = " ".join(str(int(v)) for v in np.asarray(points.tracks[i]).reshape(-1))
        lines.append(" ".join([str(int(points.ids[i])), *map(repr, map(float, points.xyz[i])),
                               *map(str, map(int, points.rgb[i])), repr(float(points.error[i])), track]).rstrip())
    return "\n".join(lines) + "\n"
