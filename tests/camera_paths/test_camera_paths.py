"""Camera paths: scene frame estimation, orbit/spiral/interpolate, keyframe and nerfstudio files."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from neuralfields.camera_paths import (
    PathSettings, catmull_rom, estimate_scene_frame, interpolate_poses, make_path, matrix_to_quaternion,
    orbit_camera, quaternion_to_matrix, save_keyframes, slerp, vertical_fov,
)
from neuralfields.cameras import Cameras, look_at
from neuralfields.errors import NeuralFieldsError

CENTRE = torch.tensor([0.3, -0.2, 0.5])


def ring_info(n: int = 12, radius: float = 3.0, elevation_deg: float = 30.0, up_axis: int = 2, arc: float = 2 * math.pi,
              dynamic: bool = False) -> SimpleNamespace:
    """Cameras on a ring (or an arc) around CENTRE looking at it, with ``up`` along a world axis."""
    up = torch.zeros(3)
    up[up_axis] = 1.0
    a1 = torch.zeros(3)
    a1[(up_axis + 1) % 3] = 1.0
    a2 = torch.linalg.cross(up, a1)
    az = torch.linspace(0, arc, n + 1)[:-1] if arc >= 2 * math.pi else torch.linspace(-arc / 2, arc / 2, n)
    el = torch.full((n,), math.radians(elevation_deg)) + 0.2 * torch.sin(3 * az)  # not all at one height
    dirs = torch.cos(el)[:, None] * (torch.cos(az)[:, None] * a1 + torch.sin(az)[:, None] * a2) + torch.sin(el)[:, None] * up
    eye = CENTRE + radius * dirs
    c2w = look_at(eye, CENTRE.expand_as(eye), up)
    focal = 0.5 * 60 / math.tan(math.radians(40) / 2)
    cams = Cameras.create(c2w, focal, focal, 40, 30, 80, 60)
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    return SimpleNamespace(cameras=cams, aabb=aabb, dynamic=dynamic, times=None)


def looks_at(c2w: torch.Tensor, point: torch.Tensor, tol: float = 1e-3) -> bool:
    forward = -c2w[:, :, 2]
    to_point = point - c2w[:, :, 3]
    to_point = to_point / to_point.norm(dim=-1, keepdim=True)
    return bool(((forward * to_point).sum(-1) > 1 - tol).all())


@pytest.mark.parametrize("up_axis", [1, 2])
def test_scene_frame_recovers_centre_up_radius(up_axis):
    info = ring_info(up_axis=up_axis)
    frame = estimate_scene_frame(info.cameras, info.aabb)
    assert np.allclose(frame.centre, CENTRE.numpy(), atol=1e-4)
    assert np.allclose(frame.up, np.eye(3)[up_axis], atol=1e-6)
    assert frame.radius == pytest.approx(3.0, rel=1e-4)
    assert not frame.forward_facing
    assert frame.fov == pytest.approx(40.0, abs=1e-3)
    assert vertical_fov(info.cameras)[0].item() == pytest.approx(40.0, abs=1e-3)


def test_forward_facing_capture_is_detected_and_swept():
    info = ring_info(n=9, arc=math.radians(60))
    frame = estimate_scene_frame(info.cameras, info.aabb)
    assert frame.forward_facing
    path = make_path("orbit", info, PathSettings(seconds=1, fps=12))
    az = np.arctan2(*(path.cameras.c2w[:, :, 3] - CENTRE)[:, [1, 0]].T.numpy())
    assert np.ptp(az) < math.radians(60)  # stays within the covered arc


@pytest.mark.parametrize("kind", ["orbit", "spiral", "interpolate"])
def test_generated_paths(kind):
    info = ring_info()
    path = make_path(kind, info, PathSettings(seconds=2, fps=10, width=32, height=24))
    assert len(path) == 20 and path.fps == 10
    assert (path.width, path.height) == (32, 24)
    rot = path.cameras.c2w[:, :, :3]
    assert torch.allclose(rot.transpose(1, 2) @ rot, torch.eye(3).expand(20, 3, 3), atol=1e-4)
    assert path.times is None
    if kind != "interpolate":
        assert looks_at(path.cameras.c2w, CENTRE)
    if kind == "orbit":
        dist = (path.cameras.c2w[:, :, 3] - CENTRE).norm(dim=-1)
        assert torch.allclose(dist, torch.full_like(dist, 3.0), rtol=1e-3)
        # Successive frames are equally spaced: constant angular speed.
        steps = (path.cameras.c2w[1:, :, 3] - path.cameras.c2w[:-1, :, 3]).norm(dim=-1)
        assert steps.std() / steps.mean() < 1e-3


def test_interpolate_passes_through_training_poses():
    info = ring_info(n=6)
    n = 5 * 15 + 1  # 6 keyframes by default -> frames 0, 15, 30, ... land on them
    path = make_path("interpolate", info, PathSettings(fps=n, seconds=1, max_keyframes=6))
    positions = path.cameras.c2w[::15, :, 3]
    train = info.cameras.c2w[:, :, 3]
    # Every keyframe frame coincides with some training camera (the tour reorders them).
    d = torch.cdist(positions, train)
    assert d.min(dim=1).values.max() < 1e-4
    assert len(set(d.argmin(dim=1).tolist())) == 6


def test_spline_and_slerp_basics():
    pts = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    seg = np.array([0, 1, 2, 2])
    u = np.array([0.0, 0.0, 0.0, 1.0])
    assert np.allclose(catmull_rom(pts, seg, u), pts)  # interpolating spline
    q = matrix_to_quaternion(np.stack([np.eye(3), quaternion_to_matrix(np.array([[math.cos(0.5), 0, 0, math.sin(0.5)]]))[0]]))
    mid = slerp(q[:1], q[1:], np.array([0.5]))
    angle = 2 * math.acos(min(1.0, mid[0, 0]))
    assert angle == pytest.approx(0.5, abs=1e-6)  # half of the 1-radian rotation
    r = np.linalg.qr(np.random.default_rng(0).normal(size=(20, 3, 3)))[0]
    r *= np.sign(np.linalg.det(r))[:, None, None]
    assert np.allclose(quaternion_to_matrix(matrix_to_quaternion(r)), r, atol=1e-9)


def test_closed_interpolation_loops():
    info = ring_info(n=4)
    c2w, _, _ = interpolate_poses(info.cameras.c2w.double().numpy(), 40, closed=True)
    assert np.allclose(c2w[0], info.cameras.c2w[0].numpy(), atol=1e-5)
    # The last frame is one step before the start, not on it.
    assert np.linalg.norm(c2w[-1, :, 3] - c2w[0, :, 3]) < 2 * np.linalg.norm(c2w[1, :, 3] - c2w[0, :, 3])


def test_time_track():
    info = ring_info(dynamic=True)
    path = make_path("orbit", info, PathSettings(seconds=1, fps=5))
    assert torch.allclose(path.times, torch.linspace(0, 1, 5))
    path = make_path("orbit", info, PathSettings(seconds=1, fps=5, time_range=(0.2, 0.4)))
    assert torch.allclose(path.times, torch.linspace(0.2, 0.4, 5))
    static = make_path("orbit", ring_info(), PathSettings(seconds=1, fps=5, time_range=(0.2, 0.4)))
    assert static.times is None
    with pytest.raises(NeuralFieldsError, match="--time"):
        make_path("orbit", info, PathSettings(time_range=(0.0, 2.0)))


def test_keyframe_file_roundtrip(tmp_path):
    info = ring_info(dynamic=True)
    c2w = info.cameras.c2w[:3]
    file = save_keyframes(tmp_path / "path.json", c2w, [30.0, 40.0, 50.0], 40, 30, fps=10, seconds=2,
                          times=[0.0, 0.5, 1.0])
    path = make_path(str(file), info)
    assert len(path) == 20 and (path.width, path.height) == (40, 30)
    assert torch.allclose(path.cameras.c2w[0], c2w[0], atol=1e-5)
    assert torch.allclose(path.cameras.c2w[-1], c2w[-1], atol=1e-5)
    fov = vertical_fov(path.cameras)
    assert fov[0].item() == pytest.approx(30, abs=1e-3) and fov[-1].item() == pytest.approx(50, abs=1e-3)
    assert path.times[0] == 0 and path.times[-1] == pytest.approx(1.0)
    # Flags override the file.
    path = make_path(str(file), info, PathSettings(fps=5, width=16, height=12))
    assert len(path) == 10 and path.width == 16


def test_keyframe_file_look_at_form(tmp_path):
    data = {"keyframes": [{"position": [3, 0, 1], "look_at": CENTRE.tolist()},
                          {"position": [0, 3, 1], "look_at": CENTRE.tolist(), "up": [0, 0, 1], "fov": 35}],
            "fps": 4, "seconds": 1}
    file = tmp_path / "k.json"
    file.write_text(json.dumps(data))
    path = make_path(str(file), ring_info())
    assert len(path) == 4 and (path.width, path.height) == (80, 60)  # training size by default
    assert looks_at(path.cameras.c2w[[0, -1]], CENTRE)


def test_nerfstudio_camera_path(tmp_path):
    info = ring_info()
    frames = []
    for i in range(6):
        m = torch.eye(4)
        m[:3] = info.cameras.c2w[i]
        frames.append({"camera_to_world": m.flatten().tolist(), "fov": 50, "aspect": 1.5, "render_time": i / 5})
    data = {"camera_type": "perspective", "render_height": 20, "render_width": 30, "fps": 24, "seconds": 0.25,
            "camera_path": frames, "keyframes": [{"matrix": "ignored"}]}
    file = tmp_path / "camera_path.json"
    file.write_text(json.dumps(data))
    path = make_path(str(file), info)
    assert len(path) == 6 and path.fps == 24 and (path.width, path.height) == (30, 20)
    assert torch.allclose(path.cameras.c2w, info.cameras.c2w[:6], atol=1e-6)
    assert vertical_fov(path.cameras)[0].item() == pytest.approx(50, abs=1e-3)
    assert path.times is None  # static run: times ignored
    dyn = make_path(str(file), ring_info(dynamic=True))
    assert torch.allclose(dyn.times, torch.arange(6) / 5)


@pytest.mark.parametrize("content, message", [
    ("{not json", "malformed JSON"),
    ("[]", "JSON object"),
    ('{"frames": []}', "not a camera path"),
    ('{"keyframes": []}', "non-empty list"),
    ('{"keyframes": [{"fov": 30}]}', "needs 'c2w'"),
    ('{"keyframes": [{"c2w": [[1, 0, 0]]}]}', "3x4 or 4x4"),
    ('{"keyframes": [{"c2w": [[1,0,0,0],[0,1,0,0],[0,0,1,0]], "fov": -3}]}', "positive"),
    ('{"keyframes": [{"c2w": [[1,0,0,0],[0,1,0,0],[0,0,1,0]], "time": 0}, {"c2w": [[1,0,0,0],[0,1,0,0],[0,0,1,0]]}]}',
     "every keyframe"),
    ('{"camera_path": [{"fov": 50}]}', "camera_to_world"),
    ('{"camera_path": [], "render_width": 10, "render_height": 10}', "non-empty"),
    ('{"keyframes": [{"c2w": [[1,0,0,0],[0,1,0,0],[0,0,1,0]]}], "width": 0, "height": 10}', "positive"),
])
def test_malformed_files(tmp_path, content, message):
    file = tmp_path / "bad.json"
    file.write_text(content)
    with pytest.raises(NeuralFieldsError, match=message) as info:
        make_path(str(file), ring_info())
    assert str(file) in str(info.value) and "\n" not in str(info.value)


def test_bad_specs():
    with pytest.raises(NeuralFieldsError, match="unknown path kind"):
        make_path("helix", ring_info())
    with pytest.raises(NeuralFieldsError, match="does not exist"):
        make_path("missing.json", ring_info())
    with pytest.raises(NeuralFieldsError, match="at least 1x1"):
        make_path("orbit", ring_info(), PathSettings(width=0, height=10))
    with pytest.raises(NeuralFieldsError, match="pixel limit"):
        make_path("orbit", ring_info(), PathSettings(width=100000, height=10))


def test_orbit_camera_controls():
    info = ring_info()
    cam = orbit_camera(info)
    assert len(cam) == 1 and int(cam.width[0]) == 80
    # Default azimuth, elevation and distance reproduce the first training camera's side.
    assert looks_at(cam.c2w, CENTRE)
    assert (cam.c2w[0, :, 3] - CENTRE).norm().item() == pytest.approx(3.0, rel=1e-3)
    top = orbit_camera(info, azimuth=90, elevation=60, distance=2.0, fov=30, width=20, height=10)
    offset = top.c2w[0, :, 3] - CENTRE
    assert offset.norm().item() == pytest.approx(2.0, rel=1e-5)
    assert math.degrees(math.asin(offset[2].item() / 2.0)) == pytest.approx(60, abs=1e-3)
    assert vertical_fov(top)[0].item() == pytest.approx(30, abs=1e-3)
    with pytest.raises(NeuralFieldsError):
        orbit_camera(info, distance=-1)
