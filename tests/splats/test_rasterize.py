"""The PyTorch rasteriser against a brute-force renderer, the field's camera convention, chunking,
and a fit to a target image; gsplat against ours on a GPU."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import assert_one_line_error
from neuralfields.cameras import Cameras, look_at
from neuralfields.splats import GaussianScene, RasterSettings, rasterize
from reference import reference_render

pytestmark = pytest.mark.usefixtures("one_thread")

W, H, FX, FY, CX, CY = 40, 32, 45.0, 47.0, 19.0, 17.0


def camera() -> tuple[Cameras, torch.Tensor]:
    c2w = look_at(torch.tensor([0.3, -2.5, 1.0]), torch.zeros(3), torch.tensor([0.0, 0, 1]))
    return Cameras.create(c2w, FX, FY, CX, CY, W, H), torch.cat([c2w, torch.tensor([[0.0, 0, 0, 1]])])


def small_scene(seed: int = 0) -> GaussianScene:
    """Ten anisotropic Gaussians in view, three nearly opaque ones stacked on the axis (a pixel
    behind all three stops early), one behind the camera."""
    g = torch.Generator().manual_seed(seed)
    n = 10
    means = torch.randn(n, 3, generator=g) * 0.3
    means[:3] = torch.tensor([[0.0, 0, 0], [0, 0.02, 0.1], [0.01, 0, 0.2]])
    means[3] = torch.tensor([0.3, -3.5, 1.2])  # behind the camera
    logits = torch.randn(n, generator=g) * 2
    logits[:3] = 8.0
    return GaussianScene(means, torch.log(torch.rand(n, 3, generator=g) * 0.2 + 0.05), torch.randn(n, 4, generator=g),
                         logits, torch.randn(n, 4, 3, generator=g) * 0.3)


def grads(scene: GaussianScene, image: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    scene.zero_grad()
    (image * weights).sum().backward()
    return {name: p.grad.clone() for name, p in scene.named_parameters()}


def test_matches_brute_force_reference_values_and_gradients():
    scene, (cams, c2w) = small_scene(), camera()
    bg = torch.tensor([0.1, 0.2, 0.3])
    weights = torch.rand(H, W, 3, generator=torch.Generator().manual_seed(1))
    out = rasterize(scene.gaussians(), cams, 0, bg)
    ours = grads(scene, out.rgb, weights)
    g = scene.gaussians()
    ref = reference_render(g.means, g.quats, g.scales, g.opacities, g.sh, c2w, FX, FY, CX, CY, W, H, bg)
    theirs = grads(scene, ref, weights)
    torch.testing.assert_close(out.rgb, ref.detach(), rtol=0, atol=2e-5)
    for name in ("means", "log_scales", "quats", "opacity_logits", "sh_dc", "sh_rest"):
        scale = theirs[name].abs().max()
        assert scale > 0, name
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=2e-4 * float(scale), msg=name)
    assert int(out.radii[3]) == 0 and (out.radii[[0, 1, 2]] > 0).all()  # culled behind the camera
    # The stack on the axis does stop early: without the transmittance rule the image changes.
    unstopped = rasterize(scene.gaussians(), cams, 0, bg, RasterSettings(min_transmittance=0.0))
    assert (unstopped.rgb - out.rgb).abs().max() > 1e-6


def test_depth_chunks_give_the_same_image_and_gradients():
    scene, (cams, _) = small_scene(2), camera()
    weights = torch.rand(H, W, 3, generator=torch.Generator().manual_seed(3))
    whole = rasterize(scene.gaussians(), cams, 0)
    g_whole = grads(scene, whole.rgb, weights)
    chunked = rasterize(scene.gaussians(), cams, 0, settings=RasterSettings(pair_budget=100))
    g_chunked = grads(scene, chunked.rgb, weights)
    torch.testing.assert_close(chunked.rgb, whole.rgb, rtol=0, atol=1e-6)
    torch.testing.assert_close(chunked.alpha, whole.alpha, rtol=0, atol=1e-6)
    for name in g_whole:
        torch.testing.assert_close(g_chunked[name], g_whole[name], rtol=1e-4, atol=1e-5)


def test_a_gaussian_lands_on_the_pixel_whose_ray_passes_through_it():
    """Splats and fields share the camera convention: put a small Gaussian on the ray of a pixel
    (``Cameras.pixel_rays``, what fields render by) and that pixel is the brightest."""
    cams, _ = camera()
    for x, y in [(5, 7), (30, 20), (19, 3)]:
        origin, direction = cams.pixel_rays(0, torch.tensor([y * W + x]))
        point = origin + 2.0 * direction
        scene = GaussianScene.from_points(point, torch.ones(1, 3), scales=[0.004], opacity=0.9)
        out = rasterize(scene.gaussians(), cams, 0)
        assert divmod(int(out.alpha.argmax()), W) == (y, x)
        assert out.alpha[y, x] > 0.8


def test_means2d_gradient_is_retained_for_densification():
    scene, (cams, _) = small_scene(), camera()
    out = rasterize(scene.gaussians(), cams, 0)
    out.rgb.sum().backward()
    grad = out.means2d.grad.reshape(-1, 2)
    assert grad.shape == (len(scene), 2)
    assert (grad[out.visible].norm(dim=-1) > 0).all() and (grad[~out.visible] == 0).all()


def test_fitting_a_target_image_reaches_a_psnr_bar():
    """Random Gaussians learn a picture of three soft discs by Adam on the rendered image."""
    res = 32
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, res), torch.linspace(-1, 1, res), indexing="ij")
    target = torch.zeros(res, res, 3)
    for (cx, cy, r), colour in zip([(-0.4, -0.3, 0.35), (0.35, 0.1, 0.45), (0.0, 0.55, 0.3)],
                                   [(1.0, 0.2, 0.1), (0.1, 0.8, 0.3), (0.2, 0.3, 1.0)]):
        inside = torch.sigmoid((r - ((xs - cx) ** 2 + (ys - cy) ** 2).sqrt()) * 30)[..., None]
        target = target * (1 - inside) + inside * torch.tensor(colour)
    c2w = look_at(torch.tensor([0.0, 0, 3]), torch.zeros(3), torch.tensor([0.0, 1, 0]))
    cams = Cameras.create(c2w, res * 1.5, res * 1.5, res / 2, res / 2, res, res)
    g = torch.Generator().manual_seed(0)
    n = 300
    pts = torch.cat([(torch.rand(n, 2, generator=g) - 0.5) * 2.2, torch.zeros(n, 1)], 1)
    scene = GaussianScene.from_points(pts, torch.rand(n, 3, generator=g), scales=torch.full((n,), 0.06), opacity=0.5,
                                      max_degree=0)
    opt = torch.optim.Adam(scene.param_groups(lr=10.0))
    for _ in range(150):
        out = rasterize(scene.gaussians(), cams, 0)
        loss = (out.rgb - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        psnr = -10 * math.log10(float((rasterize(scene.gaussians(), cams, 0).rgb - target).square().mean()))
    assert psnr > 32, psnr


def test_backend_choice():
    from neuralfields.splats.rasterize import choose_backend

    assert choose_backend("auto", torch.device("cpu")).render.__name__ == "render_torch"
    assert_one_line_error(lambda: choose_backend("gsplat", torch.device("cpu")), "gsplat", "not available")
    assert_one_line_error(lambda: choose_backend("optix", torch.device("cpu")), "unknown rasteriser backend 'optix'")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_backend_on_cuda_matches_the_cpu():
    scene, (cams, _) = small_scene(), camera()
    cpu = rasterize(scene.gaussians(), cams, 0, torch.full((3,), 0.5)).rgb
    gpu = rasterize(scene.to("cuda").gaussians(), cams, 0, torch.full((3,), 0.5),
                    RasterSettings(backend="torch")).rgb
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gsplat_matches_ours():
    pytest.importorskip("gsplat")
    g = torch.Generator().manual_seed(5)
    n = 2000
    pts = torch.randn(n, 3, generator=g) * 0.4
    scene = GaussianScene.from_points(pts, torch.rand(n, 3, generator=g), scales=torch.full((n,), 0.03), opacity=0.5)
    with torch.no_grad():  # below gsplat's and 3DGS's different alpha caps (0.999 and 0.99)
        scene.opacity_logits.copy_(torch.rand(n, generator=g) * 4 - 3)
        scene.sh_rest.normal_(0, 0.1, generator=g)
        scene.quats.normal_(generator=g)
    scene = scene.to("cuda")
    c2w = look_at(torch.tensor([0.5, -2.5, 1.0]), torch.zeros(3), torch.tensor([0.0, 0, 1]))
    cams = Cameras.create(c2w, 160.0, 160.0, 100.0, 75.0, 200, 150)
    bg = torch.tensor([0.2, 0.3, 0.4])
    ours = rasterize(scene.gaussians(), cams, 0, bg, RasterSettings(backend="torch"))
    theirs = rasterize(scene.gaussians(), cams, 0, bg, RasterSettings(backend="gsplat"))
    diff = (ours.rgb - theirs.rgb).abs()
    assert float(diff.mean()) < 2e-3 and float(diff.max()) < 5e-2
    drawn = ours.visible & theirs.visible  # gsplat leaves culled rows unset
    assert drawn.sum() > 0.9 * ours.visible.sum()
    torch.testing.assert_close(ours.means2d.reshape(-1, 2)[drawn], theirs.means2d.reshape(-1, 2)[drawn], rtol=0, atol=1e-3)
