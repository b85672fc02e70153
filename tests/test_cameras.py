import math

import torch

from neuralfields.cameras import Cameras, distort, look_at, undistort


def test_centre_ray_follows_minus_z_and_corner_matches_fov():
    # Identity pose: the camera sits at the origin looking along -z with y up.
    fov = math.radians(60)
    w = h = 100
    f = 0.5 * w / math.tan(fov / 2)
    cams = Cameras.create(torch.eye(4), f, f, w / 2, h / 2, w, h)
    o, d = cams.rays(torch.tensor([0, 0, 0]), torch.tensor([50.0, 0.0, 100.0]), torch.tensor([50.0, 50.0, 0.0]))
    assert torch.allclose(o, torch.zeros(3, 3))
    assert torch.allclose(d[0], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)
    # Left edge centre: 30 degrees to the left of the optical axis.
    assert math.isclose(math.degrees(math.atan2(-d[1, 0], -d[1, 2])), 30.0, abs_tol=1e-4)
    # Top-right corner (v = 0 is the top row): right and up in camera space.
    assert d[2, 0] > 0 and d[2, 1] > 0
    _, d_bottom = cams.rays(torch.tensor([0]), torch.tensor([100.0]), torch.tensor([100.0]))
    assert d_bottom[0, 1] < 0  # image rows grow downwards


def test_look_at_camera_sees_target_in_the_centre():
    c2w = look_at(torch.tensor([3.0, -2.0, 1.5]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    cams = Cameras.create(c2w, 50, 50, 32, 32, 64, 64)
    o, d = cams.rays(torch.tensor([0]), torch.tensor([32.0]), torch.tensor([32.0]))
    to_target = -o[0] / o[0].norm()
    assert torch.allclose(d[0], to_target, atol=1e-5)
    # The camera's up vector has a positive world-z component.
    assert c2w[2, 1] > 0


def test_undistort_inverts_distort():
    coeffs = torch.tensor([[0.0578, -0.0805, -0.00098, 0.00016]]).expand(500, 4)
    x, y = torch.rand(500) - 0.5, torch.rand(500) - 0.5
    xd, yd = distort(x, y, coeffs)
    xu, yu = undistort(xd, yd, coeffs)
    assert torch.allclose(xu, x, atol=1e-6) and torch.allclose(yu, y, atol=1e-6)


def test_distorted_camera_rays_differ_from_pinhole_away_from_centre():
    plain = Cameras.create(torch.eye(4), 100, 100, 50, 50, 100, 100)
    bent = Cameras.create(torch.eye(4), 100, 100, 50, 50, 100, 100, [0.2, 0.0, 0.0, 0.0])
    idx = torch.tensor([0, 0])
    u, v = torch.tensor([50.0, 100.0]), torch.tensor([50.0, 100.0])
    _, d0 = plain.rays(idx, u, v)
    _, d1 = bent.rays(idx, u, v)
    assert torch.allclose(d0[0], d1[0])
    assert not torch.allclose(d0[1], d1[1], atol=1e-3)
