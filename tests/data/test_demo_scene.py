"""Tests for the built-in demo scene generator (neuralfields.data.demo)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralfields.cameras import Cameras, fov_to_focal
from neuralfields.data.demo import CAMERA_RADIUS, DemoScene, default_demo_dir, demo_fov, write_demo_scene
from neuralfields.errors import NeuralFieldsError

RES = 32
SPLITS = {"train": 6, "val": 2, "test": 2}


@pytest.fixture(scope="module")
def scene() -> DemoScene:
    return DemoScene()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    returned = write_demo_scene(out, resolution=RES, n_train=6, n_val=2, n_test=2, seed=0, supersample=2)
    assert returned == out
    return out


def load_split(root, split):
    """Read a split the way a NeRF-synthetic loader does: focal from camera_angle_x, principal point W/2."""
    meta = json.loads((root / f"transforms_{split}.json").read_text())
    c2w = torch.tensor([f["transform_matrix"] for f in meta["frames"]], dtype=torch.float32)
    images = [np.asarray(Image.open(root / (f["file_path"] + ".png"))) for f in meta["frames"]]
    w = images[0].shape[1]
    focal = fov_to_focal(meta["camera_angle_x"], w)
    cams = Cameras.create(c2w, focal, focal, w / 2, w / 2, w, w)
    return meta, cams, images


def test_folder_is_nerf_synthetic(demo_dir, scene):
    fov = demo_fov(scene)
    assert math.radians(35) < fov < math.radians(45)
    train_positions = None
    for split, n in SPLITS.items():
        meta, cams, images = load_split(demo_dir, split)
        assert meta["camera_angle_x"] == pytest.approx(fov)
        assert [f["file_path"] for f in meta["frames"]] == [f"./{split}/r_{i}" for i in range(n)]
        for f in meta["frames"]:
            m = np.asarray(f["transform_matrix"])
            assert m.shape == (4, 4)
            np.testing.assert_allclose(m[3], [0, 0, 0, 1])
            np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-5)
        for i in range(n):
            im = Image.open(demo_dir / split / f"r_{i}.png")
            assert im.mode == "RGBA" and im.size == (RES, RES)
        alpha = np.stack(images)[..., 3]
        assert (alpha == 0).any() and (alpha == 255).any()
        # Transparent pixels carry no colour; opaque ones are not all black.
        assert (np.stack(images)[..., :3][alpha == 0] == 0).all()
        assert np.stack(images)[..., :3][alpha == 255].mean() > 40

        # Cameras on the upper hemisphere at the documented radius, looking at the scene centre.
        eye = cams.c2w[:, :, 3]
        offset = eye - scene.centre
        assert torch.allclose(offset.norm(dim=-1), torch.full((n,), CAMERA_RADIUS), atol=1e-4)
        elevation = torch.rad2deg(torch.asin(offset[:, 2] / offset.norm(dim=-1)))
        assert (elevation > 14).all() and (elevation < 61).all()
        forward = -cams.c2w[:, :, 2]
        assert torch.allclose(forward, -offset / offset.norm(dim=-1, keepdim=True), atol=1e-5)
        if split == "train":
            train_positions = eye
        else:
            assert torch.cdist(eye, train_positions).min() > 1e-2

    marker = json.loads((demo_dir / "demo_scene.json").read_text())
    assert marker["params"]["resolution"] == RES and marker["camera_angle_x"] == pytest.approx(fov)
    assert not (demo_dir / "demo_scene.partial").exists()


def test_scene_fits_in_every_view(demo_dir, scene):
    lo, hi = scene.bounds
    assert (lo >= -0.9).all() and (hi <= 0.9).all()
    corners = torch.stack(torch.meshgrid(*[torch.stack([lo[i], hi[i]]) for i in range(3)], indexing="ij"), -1)
    corners = corners.reshape(-1, 3)
    _, cams, _ = load_split(demo_dir, "train")
    for k in range(len(cams)):
        rot, eye = cams.c2w[k, :, :3], cams.c2w[k, :, 3]
        local = (corners - eye) @ rot  # camera space, looking along -z
        u = cams.fx[k] * local[:, 0] / -local[:, 2] + cams.cx[k]
        v = -cams.fy[k] * local[:, 1] / -local[:, 2] + cams.cy[k]
        assert (local[:, 2] < 0).all()
        assert (u > 0).all() and (u < RES).all() and (v > 0).all() and (v < RES).all()


def test_centre_ray_hits_and_ray_away_misses(demo_dir, scene):
    _, cams, _ = load_split(demo_dir, "train")
    # The steepest camera's centre ray crosses the scene centre and lands on the platform at worst.
    k = int(cams.c2w[:, 2, 3].argmax())
    idx = torch.tensor([k, k])
    o, d = cams.rays(idx, torch.tensor([RES / 2, RES / 2]), torch.tensor([RES / 2, RES / 2]))
    d[1] = -d[1]  # straight away from the scene
    out = scene.intersect(o, d)
    assert out["hit"].tolist() == [True, False]
    assert 0 < out["t"][0] < 2 * CAMERA_RADIUS and math.isinf(out["t"][1])
    assert out["rgb"][1].abs().sum() == 0 and out["normal"][1].abs().sum() == 0

    origins = torch.tensor([[0.0, 0.0, 0.5], [2.0, 0.0, -0.55]])
    up = scene.intersect(origins, torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]]))
    assert up["hit"].tolist() == [False, True]
    assert up["t"][1] == pytest.approx(1.2, abs=1e-6)  # platform side face at x = 0.8
    assert torch.allclose(up["normal"][1], torch.tensor([1.0, 0.0, 0.0]))


def test_intersect_points_lie_on_surface(demo_dir, scene):
    _, cams, _ = load_split(demo_dir, "val")
    o, d = cams.image_rays(0)
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    out = scene.intersect(o, d)
    hit = out["hit"]
    assert 0.05 < hit.float().mean() < 0.95
    p = o[hit] + out["t"][hit, None] * d[hit]
    assert scene.sdf(p).abs().max() < 1e-4
    n = out["normal"][hit]
    assert torch.allclose(n.norm(dim=-1), torch.ones(len(n)), atol=1e-5)
    assert ((n * d[hit]).sum(-1) < 0).all()  # we see the outside of every surface
    assert out["rgb"].min() >= 0 and out["rgb"].max() <= 1
    # Shadows and shading make colours vary, not just the albedo.
    assert out["rgb"][hit].std(0).min() > 0.05


def test_sdf_and_surface_samples(scene):
    centres, radii = scene.sphere_centre.float(), scene.sphere_radius.float()
    d = scene.sdf(centres)
    assert (d < 0).all() and torch.allclose(d, -radii, atol=1e-6)
    far = scene.sdf(torch.tensor([[5.0, 0.0, -0.55], [-0.35, 0.35, 3.0]]))  # beside platform, above tall box
    assert far[0] == pytest.approx(5.0 - 0.8, abs=1e-5) and far[1] == pytest.approx(3.0 - 0.18, abs=1e-5)
    # Exact box distance off an edge: sqrt(dx^2 + dz^2) from the platform's top edge.
    assert scene.sdf(torch.tensor([[0.9, 0.0, -0.4]]))[0] == pytest.approx(math.hypot(0.1, 0.1), abs=1e-6)
    assert scene.sdf(torch.tensor([[0.0, 0.0, -0.55]]))[0] == pytest.approx(-0.05, abs=1e-6)

    pts = scene.sample_surface(20000, seed=3)
    assert pts.shape == (20000, 3) and pts.dtype == torch.float32
    assert scene.sdf(pts).abs().max() < 1e-4
    assert torch.equal(pts, scene.sample_surface(20000, seed=3))
    assert not torch.equal(pts, scene.sample_surface(20000, seed=4))
    lo, hi = scene.bounds
    assert (pts >= lo - 1e-5).all() and (pts <= hi + 1e-5).all()
    # Every primitive contributes visible surface.
    dist = torch.cat([
        ((pts[:, None] - scene.box_centre.float()).abs() - scene.box_half.float()).amax(-1).abs(),
        ((pts[:, None] - centres).norm(dim=-1) - radii).abs(),
    ], dim=1)
    owner = dist.argmin(1)
    assert set(owner.tolist()) == set(range(scene.n_primitives))
    # Area-uniform: the platform's underside covers 2.56 of the ~8.95 outer area (buried caps and
    # footprints excluded), so it should get that share (binomial std ~0.003 here).
    underside = (pts[:, 2] < -0.6 + 1e-6).float().mean()
    assert underside == pytest.approx(2.56 / 8.95, abs=0.015)


def test_alpha_matches_centre_ray_coverage(demo_dir, scene):
    for split in ("train", "test"):
        _, cams, images = load_split(demo_dir, split)
        for k, image in enumerate(images):
            o, d = cams.image_rays(k)
            hit = scene.intersect(o.reshape(-1, 3), d.reshape(-1, 3))["hit"].reshape(RES, RES).numpy()
            alpha = image[..., 3] / 255.0
            assert (alpha[hit] > 0.5).mean() > 0.95
            assert (alpha[~hit] < 0.5).mean() > 0.95


def _mtimes(root):
    return {p: p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def test_regeneration_is_cached_and_params_invalidate(tmp_path):
    out = tmp_path / "demo"
    write_demo_scene(out, resolution=16, n_train=3, n_val=2, n_test=1, supersample=1)
    old = 1_000_000_000 * 10**9
    for p in _mtimes(out):
        os.utime(p, ns=(old, old))
    write_demo_scene(out, resolution=16, n_train=3, n_val=2, n_test=1, supersample=1)
    assert all(t == old for t in _mtimes(out).values())

    write_demo_scene(out, resolution=16, n_train=3, n_val=1, n_test=1, supersample=1, seed=1)
    times = _mtimes(out)
    assert times[out / "train" / "r_0.png"] != old
    assert not (out / "val" / "r_1.png").exists()  # stale frame of the larger split removed
    assert json.loads((out / "demo_scene.json").read_text())["params"]["seed"] == 1
    assert len(json.loads((out / "transforms_val.json").read_text())["frames"]) == 1


def test_incomplete_generation_is_redone(tmp_path):
    out = tmp_path / "demo"
    write_demo_scene(out, resolution=8, n_train=2, n_val=1, n_test=1, supersample=1)
    (out / "train" / "r_1.png").unlink()  # as if interrupted
    write_demo_scene(out, resolution=8, n_train=2, n_val=1, n_test=1, supersample=1)
    assert (out / "train" / "r_1.png").is_file()

    (out / "demo_scene.json").unlink()
    (out / "demo_scene.partial").write_text("{}")  # generation died before the marker
    write_demo_scene(out, resolution=8, n_train=2, n_val=1, n_test=1, supersample=1)
    assert (out / "demo_scene.json").is_file() and not (out / "demo_scene.partial").exists()


def test_refuses_foreign_dataset_and_bad_params(tmp_path):
    (tmp_path / "transforms_train.json").write_text('{"frames": []}')
    with pytest.raises(NeuralFieldsError, match="transforms_train.json"):
        write_demo_scene(tmp_path, resolution=8, n_train=1, n_val=0, n_test=0)
    assert (tmp_path / "transforms_train.json").read_text() == '{"frames": []}'
    with pytest.raises(NeuralFieldsError):
        write_demo_scene(tmp_path / "x", resolution=0)


def test_default_demo_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURALFIELDS_HOME", str(tmp_path))
    assert default_demo_dir() == tmp_path / "demo"
    monkeypatch.delenv("NEURALFIELDS_HOME")
    assert default_demo_dir() == Path.home() / ".cache" / "neuralfields" / "demo"
