"""nerfstudio transforms.json, and how it is told apart from instant-ngp's."""

import json
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error
from neuralfields.cameras import look_at
from neuralfields.data import detect_format, load_scene

W, H = 16, 12


def ring(n: int, radius: float) -> list[list[list[float]]]:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    eye = torch.tensor(np.stack([radius * np.cos(a), radius * np.sin(a), np.full(n, 0.5)], 1), dtype=torch.float32)
    c2w = look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    return [np.concatenate([m.numpy(), [[0, 0, 0, 1]]]).tolist() for m in c2w]


def write_transforms(root: Path, n: int = 10, radius: float = 1.5, **extra) -> dict:
    (root / "images").mkdir(parents=True, exist_ok=True)
    frames = []
    for i, pose in enumerate(ring(n, radius)):
        Image.new("RGB", (W, H), (20 * i, 0, 0)).save(root / "images" / f"frame_{i:05d}.png")
        frames.append({"file_path": f"images/frame_{i:05d}.png", "transform_matrix": pose})
    frames[3].update(fl_x=15.0, cx=7.0)  # per-frame intrinsics override the file's
    meta = {"camera_model": "OPENCV", "fl_x": 14.0, "fl_y": 14.5, "cx": 8.0, "cy": 6.0, "w": W, "h": H,
            "k1": 0.01, "k2": -0.002, "p1": 0.001, "p2": 0.0, "frames": frames, **extra}
    (root / "transforms.json").write_text(json.dumps(meta))
    return meta


def test_nerfstudio_and_ngp_agree_on_the_same_file(tmp_path):
    write_transforms(tmp_path)
    assert detect_format(tmp_path) == "nerfstudio"
    for split in ("train", "val"):
        ns = load_scene(tmp_path, split)
        ngp = load_scene(tmp_path, split, format="ngp")
        assert ns.format == "nerfstudio" and ngp.format == "ngp" and ns.files == ngp.files
        for name in ("c2w", "fx", "fy", "cx", "cy", "width", "height", "distortion"):
            assert torch.equal(getattr(ns.cameras, name), getattr(ngp.cameras, name)), name
        assert torch.equal(ns.images, ngp.images)
    train = load_scene(tmp_path, "train")
    assert len(train) == 8 and train.cameras.fx[2].item() == 15.0 and train.cameras.cx[2].item() == 7.0
    assert torch.allclose(train.cameras.distortion[0], torch.tensor([0.01, -0.002, 0.001, 0.0]))
    # Used as stored: the box holds the cameras with a margin; the ring looks inward.
    assert train.transform is None and train.kind == "object"
    assert torch.allclose(train.aabb[1], torch.full((3,), 1.5 / 0.9), atol=1e-5)


def test_instant_ngp_files_stay_with_the_ngp_loader(tmp_path):
    meta = write_transforms(tmp_path)
    del meta["camera_model"]
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    assert detect_format(tmp_path) == "ngp"


def write_ply(path: Path, points: np.ndarray) -> None:
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\nproperty float x\n"
              "property float y\nproperty float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    rows = b"".join(struct.pack("<3f3B", *p, 1, 2, 3) for p in points)
    path.write_bytes(header.encode() + rows)


def test_large_scenes_are_normalised_and_extras_recorded(tmp_path):
    applied = [[0, 1, 0, 0.5], [1, 0, 0, 0], [0, 0, -1, 0]]
    pts = np.random.default_rng(0).normal(scale=2.0, size=(300, 3))
    write_ply(tmp_path / "sparse_pc.ply", pts)
    write_transforms(tmp_path, radius=10.0, applied_transform=applied, ply_file_path="sparse_pc.ply")
    (tmp_path / "images_2").mkdir()
    for f in (tmp_path / "images").iterdir():
        Image.open(f).resize((W // 2, H // 2)).save(tmp_path / "images_2" / f.name)
    scene = load_scene(tmp_path, "all", downscale=2)
    assert scene.transform is not None and scene.points.shape == (300, 3)
    assert (scene.cameras.c2w[:, :, 3].abs() <= 0.9 + 1e-5).all() and (scene.aabb[1] == 1).all()
    assert torch.allclose(scene.applied_transform[:3], torch.tensor(applied, dtype=torch.float32))
    assert Path(scene.files[0]).parent.name == "images_2" and scene.images.shape[1:3] == (H // 2, W // 2)
    assert scene.cameras.fx[0].item() == pytest.approx(7.0)
    # Cameras still describe the same rig: relative distances scale uniformly.
    ref = load_scene(tmp_path, "all", format="ngp")
    d_ns = torch.cdist(scene.cameras.c2w[:, :, 3], scene.cameras.c2w[:, :, 3])
    d_ref = torch.cdist(ref.cameras.c2w[:, :, 3], ref.cameras.c2w[:, :, 3])
    assert torch.allclose(d_ns / d_ns.max(), d_ref / d_ref.max(), atol=1e-5)


def test_nerfstudio_bad_inputs(tmp_path):
    write_transforms(tmp_path / "fisheye", camera_model="OPENCV_FISHEYE")
    assert_one_line_error(lambda: load_scene(tmp_path / "fisheye"), "transforms.json", "OPENCV_FISHEYE", "not supported")
    write_transforms(tmp_path / "k3", k3=0.1)
    assert_one_line_error(lambda: load_scene(tmp_path / "k3"), "transforms.json", "k3")
    write_transforms(tmp_path / "applied", applied_transform=[[1, 0], [0, 1]])
    assert_one_line_error(lambda: load_scene(tmp_path / "applied"), "transforms.json", "applied_transform")
    write_transforms(tmp_path / "ply", ply_file_path="missing.ply")
    assert_one_line_error(lambda: load_scene(tmp_path / "ply"), "missing.ply", "not found")
    meta = write_transforms(tmp_path / "gone")
    (tmp_path / "gone" / meta["frames"][4]["file_path"]).unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(load_scene(tmp_path / "gone", "all")) == 9
    assert sum("skipped 1 of 10 frames" in str(w.message) for w in caught) == 1
