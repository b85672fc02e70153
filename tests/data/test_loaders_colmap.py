"""COLMAP and LLFF loaders: the model reader/writer on tiny generated captures, and the real captures."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error
from neuralfields.cameras import look_at
from neuralfields.data import load_scene
from neuralfields.data.colmap_model import (ColmapCamera, ColmapImage, ColmapPoints, c2w_to_colmap, colmap_to_c2w,
                                            read_model, write_model)
from neuralfields.data.normalize import transform_points, umeyama

W, H = 16, 12
MODELS = {  # one of each supported camera model, with its parameters for a 16x12 image
    "SIMPLE_PINHOLE": [14.0, 8.0, 6.0],
    "PINHOLE": [14.0, 15.0, 7.5, 6.5],
    "SIMPLE_RADIAL": [14.0, 8.0, 6.0, 0.01],
    "RADIAL": [14.0, 8.0, 6.0, 0.01, -0.002],
    "OPENCV": [14.0, 15.0, 8.0, 6.0, 0.01, -0.002, 0.001, -0.001],
}


def ring_c2w(n: int) -> np.ndarray:
    """``[n, 4, 4]`` OpenGL cameras on a ring (z up) around the point (1, 2, 0.5), radius 4."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    target = torch.tensor([1.0, 2.0, 0.5])
    eye = torch.tensor(np.stack([4 * np.cos(a), 4 * np.sin(a), np.full(n, 1.5)], 1), dtype=torch.float32) + target
    c2w = look_at(eye, target, torch.tensor([0.0, 0.0, 1.0])).double().numpy()
    return np.concatenate([c2w, np.tile([[[0, 0, 0, 1.0]]], (n, 1, 1))], 1)


def tiny_model(n: int = 10, n_points: int = 50, seed: int = 0):
    """A synthetic model: per-image cameras of every supported kind, points with tracks."""
    rng = np.random.default_rng(seed)
    c2w = ring_c2w(n)
    names = list(MODELS)
    cameras, images = {}, {}
    xyz = rng.normal(scale=0.5, size=(n_points, 3)) + [1.0, 2.0, 0.5]
    tracks = [[] for _ in range(n_points)]
    for i in range(n):
        model = names[i % len(names)]
        cameras[i + 1] = ColmapCamera(i + 1, model, W, H, np.array(MODELS[model]))
        q, t = c2w_to_colmap(c2w[i])
        seen = np.sort(rng.choice(n_points, 8, replace=False))
        for k, p in enumerate(seen):
            tracks[p].append((i + 1, k))
        images[i + 1] = ColmapImage(i + 1, q, t, i + 1, f"img_{i:02d}.png", rng.uniform(0, W, (8, 2)), seen.astype(np.int64) + 100)
    points = ColmapPoints(np.arange(n_points, dtype=np.int64) + 100, xyz, rng.integers(0, 255, (n_points, 3)).astype(np.uint8),
                          rng.uniform(0, 1, n_points), [np.array(t, np.int64).reshape(-1, 2) for t in tracks])
    return cameras, images, points, c2w


def write_capture(root: Path, ext: str = ".bin", n: int = 10, half_size: bool = False) -> np.ndarray:
    """A capture folder (``sparse/0`` model and images); returns the true OpenGL ``c2w`` ``[n, 4, 4]``."""
    cameras, images, points, c2w = tiny_model(n)
    write_model(root / "sparse" / "0", cameras, images, points, ext)
    for folder, size in [("images", (W, H))] + ([("images_2", (W // 2, H // 2))] if half_size else []):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, im in images.items():
            Image.new("RGB", size, (10 * i, 0, 0)).save(root / folder / im.name)
    return c2w


def assert_same_cameras_up_to_similarity(c2w_a: np.ndarray, c2w_b: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """Camera centres and orientations of two sets agree after the best similarity (a -> b)."""
    t = umeyama(c2w_a[:, :3, 3], c2w_b[:, :3, 3])
    scale = np.cbrt(np.linalg.det(t[:3, :3]))
    spread = np.linalg.norm(c2w_b[:, :3, 3] - c2w_b[:, :3, 3].mean(0), axis=1).mean()
    assert np.abs(transform_points(c2w_a[:, :3, 3], t) - c2w_b[:, :3, 3]).max() < tol * spread
    assert np.abs(t[:3, :3] / scale @ c2w_a[:, :3, :3] - c2w_b[:, :3, :3]).max() < tol
    return t


# ----------------------------------------------------------------------------- model files


def test_bin_and_txt_models_read_back_identically(tmp_path):
    cameras, images, points, c2w = tiny_model()
    write_model(tmp_path / "bin", cameras, images, points, ".bin")
    write_model(tmp_path / "txt", cameras, images, points, ".txt")
    for folder in ("bin", "txt"):
        cams, ims, pts = read_model(tmp_path / folder)
        assert cams.keys() == cameras.keys() and ims.keys() == images.keys()
        for k, cam in cameras.items():
            assert (cams[k].model, cams[k].width, cams[k].height) == (cam.model, W, H)
            assert np.array_equal(cams[k].params, cam.params)
        for k, im in images.items():
            got = ims[k]
            assert (got.name, got.camera_id) == (im.name, im.camera_id)
            assert np.array_equal(got.qvec, im.qvec) and np.array_equal(got.tvec, im.tvec)
            assert np.array_equal(got.xys, im.xys) and np.array_equal(got.point3d_ids, im.point3d_ids)
            assert np.allclose(colmap_to_c2w(got.qvec, got.tvec), c2w[k - 1], atol=1e-6)
        assert np.array_equal(pts.ids, points.ids) and np.array_equal(pts.xyz, points.xyz)
        assert np.array_equal(pts.rgb, points.rgb) and np.array_equal(pts.error, points.error)
        assert all(np.array_equal(a, b) for a, b in zip(pts.tracks, points.tracks))


def test_written_models_read_in_pycolmap(tmp_path):
    pycolmap = pytest.importorskip("pycolmap")
    cameras, images, points, _ = tiny_model()
    for ext in (".bin", ".txt"):
        rec = pycolmap.Reconstruction(str(write_model(tmp_path / ext[1:], cameras, images, points, ext)))
        assert len(rec.cameras) == 10 and len(rec.images) == 10 and len(rec.points3D) == 50
        assert rec.cameras[5].model.name == "OPENCV" and np.allclose(rec.cameras[5].params, MODELS["OPENCV"])
        assert rec.images[3].name == "img_02.png"
        assert np.allclose(rec.points3D[100].xyz, points.xyz[0])


def test_colmap_loader_converts_poses_and_intrinsics(tmp_path):
    c2w = write_capture(tmp_path / "bin", ".bin", half_size=True)
    write_capture(tmp_path / "txt", ".txt")
    scene = load_scene(tmp_path / "bin", "all")
    assert scene.format == "colmap" and scene.images.shape == (10, H, W, 3) and scene.kind == "object"
    assert_same_cameras_up_to_similarity(scene.cameras.c2w.double().numpy(), c2w)
    cams = scene.cameras
    # Camera 5 is OPENCV: fx fy cx cy k1 k2 p1 p2; camera 3 is SIMPLE_RADIAL (k1 only).
    assert torch.allclose(torch.stack([cams.fx[4], cams.fy[4], cams.cx[4], cams.cy[4]]), torch.tensor(MODELS["OPENCV"][:4]))
    assert torch.allclose(cams.distortion[4], torch.tensor(MODELS["OPENCV"][4:]))
    assert torch.allclose(cams.distortion[2], torch.tensor([0.01, 0, 0, 0]))
    assert torch.allclose(cams.distortion[3], torch.tensor([0.01, -0.002, 0, 0]))
    assert cams.c2w.dtype == torch.float32 and scene.points.shape == (50, 3) and scene.bounds.shape == (10, 2)
    # Normalised into the box, up is +z; the txt model gives the same scene.
    assert (cams.c2w[:, :, 3].abs() <= 0.9 + 1e-5).all() and (scene.aabb == torch.tensor([[-1.0] * 3, [1.0] * 3])).all()
    assert cams.c2w[:, 2, 1].mean() > 0.9
    txt = load_scene(tmp_path / "txt", "all")
    assert torch.allclose(txt.cameras.c2w, cams.c2w, atol=1e-6) and torch.allclose(txt.cameras.fx, cams.fx)
    # Held-out split: every 8th image; downscale 2 reads images_2 and halves the intrinsics.
    val = load_scene(tmp_path / "bin", "val")
    train = load_scene(tmp_path / "bin", "train", downscale=2)
    assert [Path(f).name for f in val.files] == ["img_00.png", "img_08.png"] and len(train) == 8
    assert train.images.shape[1:3] == (H // 2, W // 2) and Path(train.files[0]).parent.name == "images_2"
    assert torch.allclose(train.cameras.fx[3], cams.fx[4] / 2)


def test_colmap_skips_missing_images_with_one_warning(tmp_path):
    write_capture(tmp_path)
    for name in ("img_03.png", "img_07.png"):
        (tmp_path / "images" / name).unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scene = load_scene(tmp_path, "all")
    messages = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(messages) == 1 and "skipped 2 of 10 images" in messages[0], messages
    assert len(scene) == 8


def test_colmap_bad_inputs_are_one_line_errors(tmp_path):
    cameras, images, points, _ = tiny_model(3)
    model = write_model(tmp_path / "fisheye" / "sparse" / "0", cameras, images, points, ".txt")
    text = (model / "cameras.txt").read_text().replace("PINHOLE 16 12 14.0 15.0 7.5 6.5",
                                                       "OPENCV_FISHEYE 16 12 14.0 15.0 7.5 6.5 0.1 0.0 0.0 0.0")
    (model / "cameras.txt").write_text(text)
    assert_one_line_error(lambda: load_scene(tmp_path / "fisheye"), "cameras.txt", "OPENCV_FISHEYE", "not supported")

    empty = tmp_path / "empty"
    (empty / "sparse" / "0").mkdir(parents=True)
    (empty / "images").mkdir()
    assert_one_line_error(lambda: load_scene(empty), "sparse", "no COLMAP model")
    assert_one_line_error(lambda: load_scene(tmp_path / "fisheye", format="llff"), "poses_bounds.npy", "not found")

    partial = tmp_path / "partial"
    write_capture(partial)
    (partial / "sparse" / "0" / "images.bin").unlink()
    assert_one_line_error(lambda: load_scene(partial), "sparse/0", "incomplete COLMAP model", "cameras.bin")

    truncated = tmp_path / "truncated"
    write_capture(truncated)
    data = (truncated / "sparse" / "0" / "images.bin").read_bytes()
    (truncated / "sparse" / "0" / "images.bin").write_bytes(data[: len(data) // 2])
    assert_one_line_error(lambda: load_scene(truncated), "images.bin", "truncated")

    no_images = tmp_path / "no_images"
    write_capture(no_images)
    for f in (no_images / "images").iterdir():
        f.unlink()
    assert_one_line_error(lambda: load_scene(no_images), "images", "none of the 10 images")


# ----------------------------------------------------------------------------- real captures


def test_cup_colmap_and_llff_agree(shared_data):
    root = shared_data / "captures" / "cup"
    colmap = load_scene(root, "all", downscale=4)
    llff = load_scene(root, "all", format="llff", downscale=4)
    assert colmap.format == "colmap" and llff.format == "llff"  # the COLMAP model wins auto-detection
    assert colmap.images.shape == llff.images.shape == (77, 150, 200, 3)
    assert [Path(f).name for f in colmap.files] == [Path(f).name for f in llff.files]
    assert Path(colmap.files[0]).parent.name == "images_4"
    t = assert_same_cameras_up_to_similarity(colmap.cameras.c2w.double().numpy(), llff.cameras.c2w.double().numpy())
    # LLFF stores one focal length (the first camera's) and a centred principal point.
    f = 589.02712386 / 4
    assert torch.allclose(llff.cameras.fx, torch.full((77,), f)) and torch.allclose(colmap.cameras.fx[0], torch.tensor(f))
    assert torch.allclose(colmap.cameras.cx, llff.cameras.cx) and torch.allclose(colmap.cameras.cy, llff.cameras.cy)
    assert ((colmap.cameras.fx / f - 1).abs() < 0.15).all()
    # Near/far from the model's points match poses_bounds.npy once both are in the same units.
    scale = np.cbrt(np.linalg.det(t[:3, :3]))
    ratio = (llff.bounds.double().numpy() / scale) / colmap.bounds.double().numpy()
    assert np.allclose(np.median(ratio, axis=0), 1, atol=0.02)
    assert colmap.kind == "object" and colmap.points.shape == (9262, 3)
    val = load_scene(root, "val", downscale=4)
    names = sorted(p.name for p in (root / "images").iterdir())  # "1.jpg", "10.jpg", ...: string order
    assert [Path(f).name for f in val.files] == names[::8]


def test_bird_loads_from_colmap_and_llff(shared_data):
    root = shared_data / "captures" / "bird"
    train = load_scene(root, "train", downscale=8)
    val = load_scene(root, "val", format="llff", downscale=8)
    assert len(train) == 161 and len(val) == 23
    assert train.images.shape[1:] == (120, 68, 3) and val.images.shape[1:] == (120, 68, 3)
    assert abs(val.cameras.fx[0].item() - 905.89268806 / 8) < 1e-3
    assert (train.cameras.width == 68).all() and (train.cameras.cx == 34).all()
    assert val.bounds.shape == (23, 2) and (val.bounds[:, 0] < val.bounds[:, 1]).all()
    assert (train.cameras.c2w[:, :, 3].abs() <= 0.9 + 1e-5).all()


def test_fern_loads_from_the_smallest_images(shared_data):
    root = shared_data / "llff" / "fern"
    train = load_scene(root, "train", downscale=16)
    assert train.format == "llff"  # sparse/0 has no images.bin: not a usable COLMAP model
    val = load_scene(root, "val", downscale=16)
    assert train.images.shape == (17, 189, 252, 3) and len(val) == 3
    poses = np.load(root / "poses_bounds.npy")
    h, w, f = poses[0, 4:15:5]
    assert (h, w) == (3024, 4032)
    assert abs(train.cameras.fx[0].item() - f * 252 / 4032) < 1e-3 and train.cameras.cx[0].item() == 126
    assert train.kind == "forward"
    # Bounds scale with the scene, preserving their ratios.
    assert np.allclose((train.bounds[:, 1] / train.bounds[:, 0]).numpy(), poses[np.arange(20) % 8 != 0, 16] / poses[np.arange(20) % 8 != 0, 15], rtol=1e-5)
    # images_8 for downscale 8; with no full-size images, downscale 4 reads images_8 with a warning.
    assert load_scene(root, "val", downscale=8).images.shape[1:3] == (378, 504)
    with pytest.warns(UserWarning, match="images_8"):
        assert load_scene(root, "val", downscale=4).images.shape[1:3] == (378, 504)
    # After normalisation the mean camera up is +z.
    assert train.cameras.c2w[:, 2, 1].mean() > 0.99
