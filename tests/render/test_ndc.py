"""NDC for forward-facing captures (``neuralfields.render.space.NDCSpace``): the map, its inverse,
straight rays, the ray range and the spacing samplers use."""

from __future__ import annotations

import math

import pytest
import torch

from neuralfields.cameras import Cameras
from neuralfields.render.rays import RayBatch
from neuralfields.render.samplers.span import RaySpan
from neuralfields.render.space import NDCSpace, average_pose, ndc_frame, space_for
from conftest import assert_one_line_error


def forward_cameras(n: int = 12, seed: int = 0) -> Cameras:
    """Cameras on a small patch of the plane y = 0, all looking along +y (world z up), each turned by
    a few degrees, 40-degree field of view, 40 x 30 pixels."""
    g = torch.Generator().manual_seed(seed)
    c2w = []
    for _ in range(n):
        yaw, pitch = (torch.rand(2, generator=g) - 0.5) * math.radians(10)
        fwd = torch.stack([torch.sin(yaw), torch.cos(yaw) * torch.cos(pitch), torch.sin(pitch)])
        right = torch.nn.functional.normalize(torch.linalg.cross(fwd, torch.tensor([0.0, 0.0, 1.0])), dim=0)
        up = torch.linalg.cross(right, fwd)
        centre = torch.cat([(torch.rand(1, generator=g) - 0.5) * 0.6, torch.zeros(1), (torch.rand(1, generator=g) - 0.5) * 0.4])
        c2w.append(torch.stack([right, up, -fwd, centre], 1))
    focal = 0.5 * 30 / math.tan(math.radians(20))
    return Cameras.create(torch.stack(c2w), focal, focal, 20.0, 15.0, 40, 30)


def frame_of(cams: Cameras, near: float = 1.0):
    w, h = cams.width.float(), cams.height.float()
    index = torch.arange(len(cams))
    corners = torch.stack([cams.rays(index, w * u, h * v)[1] for u, v in [(0, 0), (1, 0), (0, 1), (1, 1)]], 1)
    return ndc_frame(cams.c2w, corners, near)


def ndc_space(cams: Cameras, near: float = 1.0) -> NDCSpace:
    return NDCSpace(torch.tensor([[-3.0, -1.0, -2.0], [3.0, 8.0, 2.0]]), ndc=frame_of(cams, near))


def camera_rays(cams: Cameras, n: int = 500, seed: int = 1) -> RayBatch:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(cams), (n,), generator=g)
    u, v = torch.rand(n, generator=g) * 40, torch.rand(n, generator=g) * 30
    return RayBatch(*cams.rays(idx, u, v))


def test_points_on_rays_map_to_ndc_and_back_exactly():
    cams = forward_cameras()
    space = ndc_space(cams)
    rays = camera_rays(cams)
    t0, _ = space.ray_range(rays.origins, rays.dirs, 0.0, 1e3, space.aabb)
    t = t0[:, None] * torch.logspace(0, 2.5, 40)[None]  # from the near plane to ~300 near-plane depths
    x = (rays.origins[:, None] + rays.dirs[:, None] * t[..., None]).reshape(-1, 3)
    u = space(x)
    assert u.abs().amax() <= 1.0 + 1e-5  # the training frustums lie in the NDC cube
    assert torch.allclose(space.inverse(u), x, rtol=1e-4, atol=1e-4)
    # And the other way round, from anywhere in the cube short of infinity.
    cube = torch.rand(2000, 3, generator=torch.Generator().manual_seed(2)) * 2 - 1
    cube[:, 2] = cube[:, 2].clamp(max=0.99)
    assert torch.allclose(space(space.inverse(cube)), cube, atol=2e-5)
    # The near plane is NDC depth -1 (NeRF's convention: depth 0 of the normalised ray), infinity +1.
    start = rays.origins + rays.dirs * t0[:, None]
    assert torch.allclose(space(start)[:, 2], torch.full((len(rays),), -1.0), atol=1e-5)
    assert (space(rays.origins + rays.dirs * 1e7)[:, 2] > 0.9999).all()


def test_the_reference_camera_maps_like_nerfs_ndc_rays():
    """With one camera at the origin looking along -z, the map is NeRF's ``ndc_rays`` formula."""
    cams = Cameras.create(torch.eye(4)[:3], 50.0, 50.0, 20.0, 15.0, 40, 30)
    frame = frame_of(cams, near=1.0)
    assert torch.allclose(frame.c2w, torch.eye(4)[:3], atol=1e-6)
    # Exactly the frustum, with the margin: NeRF's 2 f / W and 2 f / H over 1.05.
    assert torch.allclose(frame.scale, torch.tensor([2 * 50 / 40, 2 * 50 / 30]) / 1.05, rtol=1e-5)
    space = NDCSpace(torch.tensor([[-1.0] * 3, [1.0] * 3]), ndc=frame)
    p = torch.tensor([[0.3, -0.2, -2.0], [1.5, 0.5, -7.0]])
    a = frame.scale
    expected = torch.stack([-a[0] * p[:, 0] / p[:, 2], -a[1] * p[:, 1] / p[:, 2], 1 + 2 * 1.0 / p[:, 2]], -1)
    assert torch.allclose(space(p), expected, atol=1e-6)


def test_rays_stay_straight_lines_and_samples_are_even_in_ndc_depth():
    cams = forward_cameras(seed=3)
    space = ndc_space(cams, near=0.8)
    rays = camera_rays(cams, n=300, seed=4)
    span = RaySpan(space, space.aabb, near=0.05, far=1000.0)
    t0, t1 = span.ray_range(rays)
    s = torch.linspace(0, 1, 33).expand(len(rays), 33)
    t = span.to_distance(s, t0, t1)
    assert (t.diff(dim=-1) > 0).all() and torch.allclose(t[:, 0], t0) and torch.allclose(t[:, -1], t1, rtol=1e-5)
    u = space((rays.origins[:, None] + rays.dirs[:, None] * t[..., None]).reshape(-1, 3)).reshape(len(rays), 33, 3)
    # Straight: every point lies on the segment from the first NDC point to the last.
    a, b = u[:, :1], u[:, -1:]
    along = ((u - a) * (b - a)).sum(-1, keepdim=True) / ((b - a) ** 2).sum(-1, keepdim=True)
    assert (u - (a + along * (b - a))).norm(dim=-1).amax() < 1e-4
    # Even in NDC depth: the normalised distance is NDC depth (z + 1) / 2, up to the far end.
    depth = (u[..., 2] + 1) / 2
    far_depth = depth[:, -1:]
    assert torch.allclose(depth, s * far_depth, atol=1e-4)
    assert (far_depth > 0.999).all()  # 1000 half sizes deep: nearly infinity


def test_average_pose_and_cameras_ndc_cannot_hold():
    cams = forward_cameras(seed=5)
    ref = average_pose(cams.c2w)
    assert torch.allclose(ref[:, :3].T @ ref[:, :3], torch.eye(3, dtype=torch.float64), atol=1e-9)
    assert ref[1, 2] < -0.99  # the average camera looks along +y, as every camera does
    assert frame_of(cams, near=1.0) is not None
    assert frame_of(cams, near=0.0) is None
    # A camera turned to look sideways: its frustum reaches behind the reference camera's view.
    c2w = cams.c2w.clone()
    c2w[0, :, :3] = c2w[0, :, :3] @ torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    turned = Cameras(c2w, cams.fx, cams.fy, cams.cx, cams.cy, cams.width, cams.height, cams.distortion)
    assert frame_of(turned) is None


def test_render_space_values():
    assert space_for("auto", "forward") == "ndc" and space_for("auto", "unbounded") == "contract"
    assert space_for("auto", "object") == "box" and space_for("ndc", "object") == "ndc"
    assert_one_line_error(lambda: space_for("nope", "object"), "render.space", "'nope'", "ndc")
    assert_one_line_error(lambda: NDCSpace(torch.tensor([[-1.0] * 3, [1.0] * 3])), "render.space=ndc", "forward-facing")
