import math

import torch

from neuralfields.render.compositing import composite, composite_dense, exclusive_segment_cumsum


def pack(dense_values: torch.Tensor, counts: list[int]) -> torch.Tensor:
    return torch.cat([dense_values[r, :c] for r, c in enumerate(counts)])


def test_packed_compositing_equals_dense_reference():
    torch.manual_seed(0)
    n_rays, n = 6, 40
    counts = [40, 0, 13, 1, 27, 40]
    t = torch.sort(torch.rand(n_rays, n + 1) * 4, dim=1).values
    sigmas = torch.rand(n_rays, n) * 3
    rgbs = torch.rand(n_rays, n, 3)
    mask = torch.arange(n)[None] < torch.tensor(counts)[:, None]
    ref_rgb, ref_w = composite_dense((t[:, 1:] - t[:, :-1]) * mask, sigmas, rgbs)
    ray_idx = torch.cat([torch.full((c,), r) for r, c in enumerate(counts)])
    out = composite(pack(t[:, :-1], counts), pack(t[:, 1:], counts), pack(sigmas, counts), pack(rgbs, counts),
                    ray_idx, n_rays)
    assert torch.allclose(out["rgb"], ref_rgb, atol=1e-5)
    assert torch.allclose(out["weights"], pack(ref_w, counts), atol=1e-5)
    assert out["opacity"][1] == 0


def test_constant_density_slab_matches_analytic_transmittance():
    sigma, a, b, n = 1.7, 1.0, 2.5, 3000
    edges = torch.linspace(a, b, n + 1)
    ray_idx = torch.zeros(n, dtype=torch.long)
    rgb = torch.tensor([0.2, 0.5, 0.9]).expand(n, 3)
    out = composite(edges[:-1], edges[1:], torch.full((n,), sigma), rgb, ray_idx, 1, background=torch.ones(3))
    expected_opacity = 1 - math.exp(-sigma * (b - a))
    assert math.isclose(out["opacity"][0].item(), expected_opacity, rel_tol=1e-4)
    expected_rgb = torch.tensor([0.2, 0.5, 0.9]) * expected_opacity + (1 - expected_opacity)
    assert torch.allclose(out["rgb"][0], expected_rgb, atol=1e-4)
    # Expected depth of an exponential distribution truncated to [a, b].
    L = b - a
    mean = a + 1 / sigma - L * math.exp(-sigma * L) / (1 - math.exp(-sigma * L))
    assert math.isclose(out["depth"][0].item(), mean, rel_tol=1e-3)


def test_segment_cumsum_stays_exact_over_many_samples():
    # 50k rays of 4 samples each: float32 global cumsums would drift by far more than 1e-4.
    ray_idx = torch.arange(50000).repeat_interleave(4)
    values = torch.full((200000,), 2.0)
    out = exclusive_segment_cumsum(values, ray_idx)
    assert torch.equal(out, torch.tensor([0.0, 2.0, 4.0, 6.0]).repeat(50000))


def test_gradients_flow_to_densities_and_colours():
    edges = torch.linspace(0, 1, 9)
    sig = torch.full((8,), 2.0, requires_grad=True)
    rgb = torch.rand(8, 3, requires_grad=True)
    out = composite(edges[:-1], edges[1:], sig, rgb, torch.zeros(8, dtype=torch.long), 1)
    out["rgb"].sum().backward()
    assert sig.grad.abs().sum() > 0 and rgb.grad.abs().sum() > 0


def test_weights_equal_nerfaccs_reference_implementation():
    """nerfacc (a reference implementation, not a dependency) agrees with our packed weights on its CPU dense path."""
    import pytest

    nerfacc = pytest.importorskip("nerfacc", reason="nerfacc not installed (a reference only: pip install nerfacc to compare)")
    from neuralfields.render.compositing import render_weights

    gen = torch.Generator().manual_seed(3)
    n_rays, n_samples = 64, 48
    edges = torch.sort(torch.rand(n_rays, n_samples + 1, generator=gen) * 4, dim=1).values
    sigmas = torch.rand(n_rays, n_samples, generator=gen) * 8
    ref_w, ref_t, ref_a = nerfacc.render_weight_from_density(edges[:, :-1], edges[:, 1:], sigmas)
    rays = torch.arange(n_rays).repeat_interleave(n_samples)
    w, t, a = render_weights(edges[:, :-1].reshape(-1), edges[:, 1:].reshape(-1), sigmas.reshape(-1), rays)
    for ours, ref in ((w, ref_w), (t, ref_t), (a, ref_a)):
        assert torch.allclose(ours.reshape(n_rays, n_samples), ref, atol=1e-5)


def test_fixed_point_segment_sums_match_float64_in_value_and_gradient():
    """The accelerators' path: int64 fixed-point values, gradients through the float32 sum."""
    from neuralfields.render.compositing import fixed_point_segment_cumsum, segment_first

    torch.manual_seed(0)
    ray_idx = torch.randint(0, 2000, (40000,)).sort().values
    values = (torch.rand(40000) * 3).requires_grad_(True)
    ours = fixed_point_segment_cumsum(values, segment_first(ray_idx))
    exact = exclusive_segment_cumsum(values.double(), ray_idx)
    assert (ours.double() - exact).abs().max() < 1e-5
    weights = torch.rand(40000)
    (g_ours,) = torch.autograd.grad((ours * weights).sum(), values)
    (g_exact,) = torch.autograd.grad((exact * weights.double()).sum(), values)
    assert (g_ours.double() - g_exact).abs().max() < 1e-3 * g_exact.abs().max()
