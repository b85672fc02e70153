"""WIRE's first-layer frequency (``first_omega``): the option audio fitting needs, and a no-op when unset."""

from __future__ import annotations

import pytest
import torch

from neuralfields.fields import build_field
from neuralfields.loop import ExponentialDecay


def outputs(name: str, options: dict, x: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(0)
    field = build_field(name, options, in_dim=1, view_dependent=False, out_dim=1)
    return field.color(x, None, field.raw_density(x)[1])


@pytest.mark.parametrize("name", ["wire", "wire-complex"])
def test_first_omega_sets_the_first_layer_only(name):
    x = torch.linspace(-1, 1, 50)[:, None]
    base = {"hidden": 16, "layers": 2, "backbone_options": {"omega": 20.0, "sigma": 10.0}}
    same = {"hidden": 16, "layers": 2, "backbone_options": {"omega": 20.0, "sigma": 10.0, "first_omega": 20.0}}
    fast = {"hidden": 16, "layers": 2, "backbone_options": {"omega": 20.0, "sigma": 10.0, "first_omega": 300.0}}
    assert torch.equal(outputs(name, base, x), outputs(name, same, x))
    assert not torch.allclose(outputs(name, base, x), outputs(name, fast, x))


def test_real_gabor_layers_keep_the_window_width_in_z():
    field = build_field("wire", {"hidden": 8, "layers": 3, "backbone_options": {"first_omega": 300.0}}, in_dim=1,
                        view_dependent=False, out_dim=1)
    backbone = field.backbone
    assert backbone.scales == [300.0, 20.0, 20.0]
    # psi = cos(omega z) exp(-(sigma z)^2): the window is sigma in z whatever omega is.
    assert [r * s for r, s in zip(backbone.ratios, backbone.scales)] == pytest.approx([10.0, 10.0, 10.0])


def test_exponential_decay_follows_a_time_budget():
    steps = ExponentialDecay(11, 0.1)
    assert steps(0) == 1 and steps(10) == pytest.approx(0.1) and steps(5) == pytest.approx(0.1**0.5)
    timed = ExponentialDecay(10**9, 0.1, time_budget=20.0)
    assert timed(3, seconds=0.0) == pytest.approx(1.0, abs=1e-6) and timed(100, seconds=10.0) == pytest.approx(0.1**0.5)
    assert timed(200, seconds=25.0) == pytest.approx(0.1)
