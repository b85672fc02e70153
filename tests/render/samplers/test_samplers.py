"""The proposal and occupancy samplers in contracted space, on a toy ball against a dense reference."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from neuralfields.fields.base import Field
from neuralfields.render.compositing import dense_weights
from neuralfields.render.rays import RayBatch
from neuralfields.render.samplers.occupancy import OccupancySettings
from neuralfields.render.samplers.proposal import ProposalSampler, ProposalSettings, outer_envelope
from neuralfields.render.shading import density_at, shade
from neuralfields.render.space import ContractedBox


class Ball(Field):
    """Toy field: a solid ball of density 40 and radius 0.3 (field coordinates) in empty space."""

    def raw_density(self, x: Tensor, t: Tensor | None = None):
        inside = (x.norm(dim=-1) < 0.3).float()
        return torch.log(40 * inside + 1e-6), x.new_zeros(x.shape[0], 1)

    def color(self, x, d, geo, t=None):
        return (x + 1) / 2


def density_of(field: Field, space):
    """The density function samplers are handed: world points (and times) -> sigma."""
    return lambda x, t=None: density_at(field, space, x, t)


def dense_reference(field: Field, space, rays: RayBatch, far: float, n: int = 20000):
    t = torch.linspace(0.0, far, n + 1)
    edges = t.expand(len(rays), -1)
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    pts = rays.origins[:, None] + rays.dirs[:, None] * mid[..., None]
    sigma = field.density(space(pts.reshape(-1, 3)))[0].reshape(len(rays), -1)
    rgb = field.color(space(pts.reshape(-1, 3)), None, None).reshape(len(rays), n, 3)
    w = dense_weights(edges, sigma)
    return (w[..., None] * rgb).sum(1), w.sum(1), (w * mid).sum(1) / w.sum(1).clamp_min(1e-9)


def ball_rays(n: int, seed: int = 0) -> RayBatch:
    """Rays from a sphere of radius 3 (world units) aimed near the origin; many hit the ball."""
    g = torch.Generator().manual_seed(seed)
    origins = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1) * 3.0
    target = (torch.rand(n, 3, generator=g) - 0.5) * 1.4
    return RayBatch(origins, torch.nn.functional.normalize(target - origins, dim=-1))


def test_proposal_sampler_learns_to_place_samples_that_match_a_dense_reference():
    """Trained only by the interlevel loss against the ball, 2 proposal levels of 64 and 32
    samples leave 24 samples per ray whose composite matches 20,000 dense samples."""
    torch.manual_seed(0)
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    space = ContractedBox(aabb)  # the ball (radius 0.6 in world units) sits in the inner box
    settings = ProposalSettings(proposal_samples=[64, 32], samples_per_ray=24, proposal_anneal_steps=50,
                                proposal_update_every=1)
    sampler = ProposalSampler(aabb, space, settings, near=0.05)
    field = Ball()
    density = density_of(field, space)
    optimizer = torch.optim.Adam(sampler.param_groups(1e-2))
    for step in range(300):
        sampler.update(step, density)
        rays = ball_rays(256, seed=step + 1)
        samples, aux = sampler.sample(rays, density, training=True)
        out = shade(field, space, samples, rays)
        losses = sampler.losses(aux, out.weights)
        assert set(losses) == {"interlevel"}  # the ball's weights carry no gradient: no distortion loss
        optimizer.zero_grad()
        losses["interlevel"].backward()
        optimizer.step()
    sampler.update(10**6, density)
    rays = ball_rays(400, seed=12345)
    with torch.no_grad():
        samples, aux = sampler.sample(rays, density)
        out = shade(field, space, samples, rays)
        ref_rgb, ref_opacity, ref_depth = dense_reference(field, space, rays, far=6.0)
    assert len(samples) == 400 * 24
    hit = ref_opacity > 0.99
    assert hit.sum() > 80 and (ref_opacity < 0.01).sum() > 50
    assert (out.opacity - ref_opacity).abs().mean() < 0.03
    assert (out.depth[hit] - ref_depth[hit]).abs().mean() < 0.03
    assert (out.rgb - ref_rgb).abs().mean() < 0.02
    # The proposal envelope bounds the scene weights from above nearly everywhere.
    s, w = aux["proposals"].levels[-1]
    envelope = outer_envelope(aux["proposals"].final_edges, s, w)
    excess = (out.weights.reshape(400, -1) - envelope).clamp_min(0).sum(-1)
    assert excess.mean() < 0.05


def test_an_untrained_proposal_sampler_spreads_samples_over_the_whole_ray():
    """Before training the histograms are flat, so samples reach the contracted far field."""
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    space = ContractedBox(aabb)
    sampler = ProposalSampler(aabb, space, ProposalSettings(far=1000.0), near=0.05)
    rays = ball_rays(16)
    with torch.no_grad():
        samples, _ = sampler.sample(rays, density_of(Ball(), space))
    assert samples.t_ends.max() > 100 and samples.t_starts.min() < 0.2
    assert (samples.t_ends >= samples.t_starts).all()


def test_occupancy_sampler_marches_contracted_space_to_the_far_field():
    from neuralfields.render.samplers.occupancy import OccupancySampler

    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    space = ContractedBox(aabb)
    sampler = OccupancySampler(aabb, space, OccupancySettings(grid_resolution=32), near=0.05)
    rays = ball_rays(64)
    density = density_of(Ball(), space)
    with torch.no_grad():
        before, _ = sampler.sample(rays, density, prune=False)
        assert before.t_ends.max() > 500  # all cells count as occupied before the first update
        sampler.grid.update(sampler.grid_density(density), sampler.occupancy_step, warmup=True)
        after, _ = sampler.sample(rays, density, prune=False)
    # Only cells of the ball stay: every kept sample lies near it, and far fewer are kept.
    pts = space(after.midpoints(rays.origins, rays.dirs))
    assert len(after) < len(before) / 10 and (pts.norm(dim=-1) < 0.3 + 2 * math.sqrt(3) / 32).all()
