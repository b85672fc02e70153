"""normalize_poses / scene_kind on synthetic camera rigs."""

import numpy as np
import pytest
import torch

from neuralfields.cameras import look_at
from neuralfields.data.normalize import (apply_transform, normalize_poses, robust_bounds, rotation_between, scene_kind,
                                         transform_points, umeyama)


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def similarity(seed: int, scale: float, shift) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = scale * random_rotation(seed)
    t[:3, 3] = shift
    return t


def inward_ring(n: int = 24, radius: float = 3.0, height: float = 1.0) -> np.ndarray:
    """``[n, 4, 4]`` cameras on a ring (z up) looking at the origin."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    eye = np.stack([radius * np.cos(a), radius * np.sin(a), np.full(n, height)], 1)
    c2w = look_at(torch.tensor(eye, dtype=torch.float32), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])).double().numpy()
    return np.concatenate([c2w, np.tile([[[0, 0, 0, 1.0]]], (n, 1, 1))], 1)


def forward_rig(n: int = 20, seed: int = 0) -> np.ndarray:
    """Cameras on a small plane, all looking along -z (LLFF style, y up)."""
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :2, 3] = np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 2))
    return c2w


def world_points(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = rng.normal(scale=0.5, size=(2000, 3))
    return np.concatenate([pts, rng.uniform(-200, 200, (10, 3))])  # a few far outliers


def assert_normalised(c2w, points, transform, box=1.0, margin=0.9):
    moved = apply_transform(c2w, transform)
    up = moved[:, :3, 1].mean(0)
    assert np.allclose(up / np.linalg.norm(up), [0, 0, 1], atol=1e-9)
    # Rotations stay orthonormal and right-handed: scale only moves camera centres.
    rot, before = moved[:, :3, :3], np.asarray(c2w)[:, :3, :3]
    assert np.allclose(rot.transpose(0, 2, 1) @ rot, before.transpose(0, 2, 1) @ before, atol=1e-12)
    assert np.allclose(rot.transpose(0, 2, 1) @ rot, np.eye(3), atol=1e-6)  # the rigs are float32-built
    assert np.allclose(np.linalg.det(rot), 1.0)
    limit = box * margin + 1e-9
    assert np.abs(moved[:, :3, 3]).max() <= limit
    if points is not None:
        assert np.abs(robust_bounds(transform_points(points, transform))).max() <= limit
    return moved


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inward_ring_is_centred_upright_and_inside_the_box(seed):
    world = similarity(seed, scale=7.0, shift=[10.0, -4.0, 2.5])
    ring = apply_transform(inward_ring(), world)
    pts = transform_points(world_points(seed), world)
    transform = normalize_poses(ring, pts, box=1.0, margin=0.9)
    moved = assert_normalised(ring, pts, transform)
    # The cameras look at the origin of the ring, which becomes the centre of the box.
    assert np.allclose(transform_points(world[:3, 3][None], transform), 0, atol=1e-6)
    assert np.abs(moved[:, :3, 3]).max() == pytest.approx(0.9)
    assert scene_kind(ring) == "object" and scene_kind(ring, pts) == "object"


def test_forward_rig_with_points_fits_the_box():
    world = similarity(5, scale=0.3, shift=[1.0, 2.0, 3.0])
    rig = apply_transform(forward_rig(), world)
    rng = np.random.default_rng(3)
    pts = transform_points(rng.uniform([-4, -3, -20], [4, 3, -2], (3000, 3)), world)
    transform = normalize_poses(rig, pts, box=2.0, margin=0.8)
    assert_normalised(rig, pts, transform, box=2.0, margin=0.8)
    # Without depths nothing says the scene lies in front of the cameras; the points say it does.
    assert scene_kind(rig) == "unbounded" and scene_kind(rig, pts) == "forward"
    assert normalize_poses(rig).shape == (4, 4)  # cameras alone work too


def test_inward_cameras_with_distant_background_are_unbounded():
    ring = inward_ring(radius=2.0)
    near = np.random.default_rng(0).normal(scale=0.3, size=(500, 3))
    far = np.random.default_rng(1).normal(size=(500, 3))
    far = 50 * far / np.linalg.norm(far, axis=1, keepdims=True)  # a background shell well outside the ring
    assert scene_kind(ring, near) == "object"
    assert scene_kind(ring, np.concatenate([near, far])) == "unbounded"


def test_outward_ring_is_unbounded():
    ring = inward_ring()
    ring[:, :3, 0] *= -1
    ring[:, :3, 2] *= -1  # turn every camera around (keeping a right-handed frame)
    assert scene_kind(ring) == "unbounded"


def test_transform_helpers_accept_3x4_and_invert_with_umeyama():
    ring = inward_ring()[:, :3]
    world = similarity(7, scale=2.5, shift=[0.5, -1.0, 4.0])
    moved = apply_transform(ring, world)
    assert moved.shape == (24, 4, 4) and np.allclose(moved[:, 3], [0, 0, 0, 1])
    assert np.allclose(moved[:, :3, 3], transform_points(ring[:, :, 3], world))
    assert np.allclose(umeyama(ring[:, :, 3], moved[:, :3, 3]), world, atol=1e-9)
    for a, b in [([0, 1, 0], [0, 0, 1]), ([0, 0, -1], [0, 0, 1]), ([1, 2, 3], [-1, 0, 0])]:
        r = rotation_between(np.array(a, float), np.array(b, float))
        assert np.allclose(r @ np.array(a) / np.linalg.norm(a), b) and np.isclose(np.linalg.det(r), 1)
