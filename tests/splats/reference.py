"""A brute-force splat renderer for tests: every pixel against every Gaussian, no tiles, no
pairs, written from the 3DGS equations independently of :mod:`neuralfields.splats`.

The projection Jacobian comes from autograd of the pinhole projection itself, rotations from the
textbook quaternion matrix, colours from the degree-1 SH formula, and compositing is the 3DGS
loop (per Gaussian in depth order, every pixel at once)."""

from __future__ import annotations

import torch

C0, C1 = 0.28209479177387814, 0.4886025119029199


def quat_matrix(q):
    w, x, y, z = q / q.norm()
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)]),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)]),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]),
    ])


def reference_render(means, quats, scales, opacities, sh, c2w_gl, fx, fy, cx, cy, width, height, background):
    """``[H, W, 3]`` image of Gaussians with degree-1 SH ``sh [N, 4, 3]`` (differentiable in all)."""
    rot_cv = c2w_gl[:3, :3] * torch.tensor([1.0, -1.0, -1.0])  # OpenGL camera axes -> OpenCV
    origin = c2w_gl[:3, 3]

    def to_pixel(p_world):
        p = rot_cv.T @ (p_world - origin)
        return torch.stack([fx * p[0] / p[2] + cx, fy * p[1] / p[2] + cy])

    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    layers = []
    for i in range(len(means)):
        depth = (rot_cv.T @ (means[i] - origin))[2]
        if depth <= 0.01:
            continue
        # d(pixel)/d(world point) at the mean: the EWA Jacobian composed with the view rotation.
        jac = torch.autograd.functional.jacobian(to_pixel, means[i], create_graph=True)
        rs = quat_matrix(quats[i]) * scales[i]
        cov = jac @ rs @ rs.T @ jac.T + 0.3 * torch.eye(2)
        inv = torch.linalg.inv(cov)
        centre = to_pixel(means[i])
        d = torch.stack([xs - centre[0], ys - centre[1]], -1)
        sigma = 0.5 * torch.einsum("hwi,ij,hwj->hw", d, inv, d)
        v = means[i] - origin
        x, y, z = v / v.norm()
        rgb = (C0 * sh[i, 0] - C1 * y * sh[i, 1] + C1 * z * sh[i, 2] - C1 * x * sh[i, 3] + 0.5).clamp_min(0)
        layers.append((depth, sigma, opacities[i], rgb))
    image = torch.zeros(height, width, 3)
    trans = torch.ones(height, width)
    active = torch.ones(height, width, dtype=torch.bool)
    for _, sigma, opacity, rgb in sorted(layers, key=lambda layer: float(layer[0].detach())):
        alpha = torch.clamp(opacity * torch.exp(-sigma), max=0.99)
        draw = active & (alpha >= 1 / 255)
        after = trans * (1 - alpha)
        stop = draw & (after < 1e-4)
        active = active & ~stop
        draw = draw & ~stop
        image = image + torch.where(draw, alpha * trans, 0)[..., None] * rgb
        trans = torch.where(draw, after, trans)
    return image + trans[..., None] * background
