"""Scene contraction for unbounded captures (``neuralfields.render.space``)."""

from __future__ import annotations

import torch

from neuralfields.render.space import ContractedBox, SceneBox, contract, uncontract


def test_contraction_is_the_identity_inside_and_bounded_everywhere():
    torch.manual_seed(0)
    inside = torch.rand(1000, 3) * 2 - 1
    assert torch.equal(contract(inside), inside)
    far = torch.randn(10000, 3) * torch.logspace(0, 30, 10000)[:, None]  # up to 1e30
    y = contract(far)
    assert torch.isfinite(y).all() and y.abs().amax() <= 2.0
    outside = far[far.abs().amax(-1) > 1.001]
    assert (contract(outside).abs().amax(-1) > 1).all()  # the shell holds what lies outside
    moderate = torch.randn(1000, 3) * 5
    assert torch.allclose(uncontract(contract(moderate)), moderate, atol=1e-4, rtol=1e-4)
    # Continuous across the inner box's surface, and monotone along a ray.
    t = torch.linspace(0.5, 100, 2000)[:, None]
    along = contract(t * torch.tensor([[0.6, -0.3, 0.2]]))
    assert (along.norm(dim=-1).diff() >= -1e-6).all()


def test_contracted_box_maps_the_inner_box_to_the_middle_half_and_the_world_into_the_cube():
    aabb = torch.tensor([[-2.0, 0.0, 1.0], [2.0, 4.0, 3.0]])
    space, box = ContractedBox(aabb), SceneBox(aabb)
    inner = aabb[0] + torch.rand(500, 3) * (aabb[1] - aabb[0])
    assert torch.allclose(space(inner), box(inner) / 2, atol=1e-6)
    world = torch.randn(500, 3) * 1e4
    assert space(world).abs().amax() <= 1.0
    assert torch.allclose(space.inverse(space(inner)), inner, atol=1e-5)
