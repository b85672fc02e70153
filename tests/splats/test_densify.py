"""Densification and pruning: which Gaussians clone, split and go, the optimiser's moments
following them, the gradient statistics, and a fit that densification improves."""

from __future__ import annotations

import math

import pytest
import torch

from neuralfields.cameras import Cameras, look_at
from neuralfields.splats import GaussianScene, rasterize
from neuralfields.splats.densify import DensifyConfig, Densifier

pytestmark = pytest.mark.usefixtures("one_thread")


def four_gaussians() -> GaussianScene:
    """0: small, 1: large, 2: nearly transparent, 3: ordinary."""
    means = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    scene = GaussianScene.from_points(means, torch.full((4, 3), 0.5), scales=[0.005, 0.2, 0.01, 0.01], opacity=0.5)
    with torch.no_grad():
        scene.opacity_logits[2] = -8.0
    return scene


def adam_with_moments(scene: GaussianScene) -> torch.optim.Adam:
    opt = torch.optim.Adam(scene.param_groups())
    sum(p.sum() * (i + 1) for i, p in enumerate(scene.parameters())).backward()
    opt.step()
    return opt


def test_clone_split_and_prune_carry_parameters_and_moments():
    scene = four_gaussians()
    opt = adam_with_moments(scene)
    before = {name: p.detach().clone() for name, p in scene.named_parameters()}
    moments = {name: opt.state[p]["exp_avg"].clone() for name, p in scene.named_parameters()}
    torch.manual_seed(0)
    d = Densifier(scene, DensifyConfig(grad_threshold=1e-3, dense_fraction=0.05), extent=1.0)
    d.bind(opt)
    d.grad_sum[:] = torch.tensor([0.01, 0.01, 0.0, 0.0])
    d.seen[:] = 2
    changes = d.densify_and_prune()
    assert changes == {"cloned": 1, "split": 1, "pruned": 1}
    # Kept 0 and 3, then the clone of 0, then the two halves of 1.
    assert len(scene) == 5
    means = scene.means.detach()
    torch.testing.assert_close(means[:3], before["means"][[0, 3, 0]])
    halves = scene.scales.detach()[3:]
    torch.testing.assert_close(halves, before["log_scales"][[1, 1]].exp() / 1.6)
    assert ((means[3:] - before["means"][1]).norm(dim=-1) < 0.2 * 4).all() and not torch.equal(means[3], means[4])
    for name, p in scene.named_parameters():
        m = opt.state[p]["exp_avg"]
        assert m.shape == p.shape
        torch.testing.assert_close(m[:2], moments[name][[0, 3]])
        assert (m[2:] == 0).all()
    assert len(d.grad_sum) == 5 and (d.grad_sum == 0).all()
    # The optimiser keeps stepping the resized parameters.
    scene.means.sum().backward()
    opt.step()


def test_opacity_reset_caps_and_forgets_moments_and_enables_size_pruning():
    scene = four_gaussians()
    opt = adam_with_moments(scene)
    d = Densifier(scene, DensifyConfig(start=1, every=1000, reset_every=10, max_world_fraction=0.15), extent=1.0)
    d.bind(opt)
    assert d.update(10) == {"reset": 1}
    assert (scene.opacities <= 0.01 + 1e-6).all() and (opt.state[scene.opacity_logits]["exp_avg"] == 0).all()
    assert (opt.state[scene.means]["exp_avg"] != 0).any()
    with torch.no_grad():
        scene.opacity_logits[:] = 0.0
    d.densify_and_prune()  # after a reset, the Gaussian larger than 0.15 of the extent goes
    assert len(scene) == 3 and float(scene.scales.detach().max()) < 0.15


def test_paced_steps_that_jump_past_a_multiple_still_trigger_once():
    scene = four_gaussians()
    d = Densifier(scene, DensifyConfig(start=1, every=1000, reset_every=10), extent=1.0)
    d.bind(adam_with_moments(scene))
    assert d.update(7) is None
    assert d.update(13) == {"reset": 1}  # 10 was skipped: the reset still comes, once
    assert d.update(14) is None and d.update(19) is None
    assert d.update(23) == {"reset": 1} and d.resets == 2


def test_a_due_densification_waits_for_enough_views():
    scene = four_gaussians()
    d = Densifier(scene, DensifyConfig(start=1, every=5, reset_every=0, min_views=3), extent=1.0)
    d.bind(adam_with_moments(scene))
    out = rasterize(scene.gaussians(), camera(24), 0)
    out.rgb.square().sum().backward()
    d.record(out)
    assert d.update(5) is None and d.owed  # due, one view recorded
    d.views = 3
    assert d.update(6) is not None and not d.owed and d.views == 0


def test_budget_keeps_the_highest_gradients():
    scene = four_gaussians()
    with torch.no_grad():
        scene.opacity_logits[2] = 0.0
    d = Densifier(scene, DensifyConfig(grad_threshold=1e-3, dense_fraction=0.5, max_gaussians=6), extent=1.0)
    d.grad_sum[:] = torch.tensor([0.01, 0.03, 0.02, 0.0])
    d.seen[:] = 1
    assert d.densify_and_prune() == {"cloned": 2, "split": 0, "pruned": 0}
    assert len(scene) == 6
    torch.testing.assert_close(scene.means.detach()[4:], torch.tensor([[1.0, 0, 0], [0, 1, 0]]))


def camera(res: int) -> Cameras:
    c2w = look_at(torch.tensor([0.0, 0, 3]), torch.zeros(3), torch.tensor([0.0, 1, 0]))
    return Cameras.create(c2w, res * 1.5, res * 1.5, res / 2, res / 2, res, res)


def test_statistics_are_screen_gradients_in_ndc_units():
    scene = four_gaussians()
    cams = camera(24)
    d = Densifier(scene, DensifyConfig(), extent=1.0)
    out = rasterize(scene.gaussians(), cams, 0)
    d.record(out)
    out.rgb.square().sum().backward()
    assert d.update(1) is None  # before start: statistics only
    grad = out.means2d.grad * torch.tensor([12.0, 12.0])
    torch.testing.assert_close(d.grad_sum, grad.norm(dim=-1) * out.visible)
    assert torch.equal(d.seen, out.visible.float()) and d.seen.sum() >= 2
    torch.testing.assert_close(d.max_radii, out.radii.float())


def target_image(res: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, res), torch.linspace(-1, 1, res), indexing="ij")
    stripes = 0.5 + 0.5 * torch.sin(9 * xs + 3 * ys)
    return torch.stack([stripes, 0.5 + 0.4 * torch.cos(7 * ys), 1 - stripes], -1)


def fit(densify: bool, steps: int = 160, res: int = 32) -> tuple[float, int]:
    torch.manual_seed(0)
    target, cams = target_image(res), camera(res)
    n = 24
    pts = torch.cat([(torch.rand(n, 2) - 0.5) * 2, torch.zeros(n, 1)], 1)
    scene = GaussianScene.from_points(pts, torch.rand(n, 3), scales=torch.full((n,), 0.15), opacity=0.5, max_degree=0)
    opt = torch.optim.Adam(scene.param_groups(lr=10.0))
    d = Densifier(scene, DensifyConfig(start=20, every=20, stop=120, grad_threshold=2e-4, dense_fraction=0.02,
                                       reset_every=0), extent=1.0)
    d.bind(opt)
    for step in range(steps):
        out = rasterize(scene.gaussians(), cams, 0)
        d.record(out)
        loss = (out.rgb - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        del out, loss  # no graph may hold the parameters while they change size
        if densify:
            d.update(step + 1)
    with torch.no_grad():
        mse = float((rasterize(scene.gaussians(), cams, 0).rgb - target).square().mean())
    return -10 * math.log10(mse), len(scene)


def test_densification_grows_the_scene_where_the_fit_needs_it():
    plain_psnr, plain_n = fit(densify=False)
    dense_psnr, dense_n = fit(densify=True)
    assert plain_n == 24 and dense_n > 4 * plain_n
    assert dense_psnr > plain_psnr + 3, (plain_psnr, dense_psnr)
