"""Proposal-network sampler (mip-NeRF 360, nerfacto): small density fields place a few dozen samples.

Every ray gets the same counts. ``K0`` intervals spaced evenly in a normalised distance ``s``
(linear up to one inner-box half size from the camera, then in disparity, so the contracted
background gets as many samples as the near scene) -> the first proposal field's densities ->
weights -> ``K1`` intervals drawn from that histogram -> the second proposal field -> ... -> the
final ``samples_per_ray`` intervals, which the scene's field evaluates. The proposal fields
learn only from the interlevel loss (:meth:`ProposalSampler.losses`): their weights must bound
from above the weights the scene's field puts in the same stretch of ray. Early in training the
histograms are flattened (weights to a power that anneals from 0 to 1), as nerfacto does, and
after that warm-up the proposal fields are trained on every ``update_every``-th step only: the
rest of the time they run without gradients, which is most of their cost on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ...encodings.hashgrid import HashGrid
from ...errors import NeuralFieldsError
from ...layers import mlp, trunc_exp
from ..compositing import dense_weights
from ..marching import PackedSamples
from ..rays import RayBatch
from . import SAMPLERS, DensityFn
from .span import RaySpan


class ProposalDensity(nn.Module):
    """A small density-only field on field coordinates ``[N, 3] -> [N]`` (hash grid + 16-wide MLP)."""

    def __init__(self, max_res: int, levels: int = 5, log2_table: int = 17, hidden: int = 16):
        super().__init__()
        self.encoding = HashGrid(3, levels, 2, log2_table, 16, max_res)
        self.mlp = mlp(self.encoding.out_dim, hidden, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return trunc_exp(self.mlp(self.encoding(x))[:, 0])


def resample(edges: Tensor, weights: Tensor, n: int, jitter: bool, padding: float = 0.01) -> Tensor:
    """``n + 1`` new edges ``[R, n + 1]`` by inverting the histogram ``weights [R, K]`` on ``edges [R, K + 1]``.

    ``padding`` keeps every interval drawable (a histogram of zeros becomes uniform); ``jitter``
    draws each quantile at random within its ``1 / (n + 1)`` slot, which keeps the edges sorted.
    """
    w = weights + padding
    pdf = w / w.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1).clamp(max=1.0)
    r, k = n + 1, edges.shape[-1] - 1
    if jitter:
        u = torch.arange(r, device=edges.device, dtype=edges.dtype) / r
        u = (u + torch.rand(edges.shape[0], r, device=edges.device, dtype=edges.dtype) / r).clamp(max=1.0)
    else:
        u = torch.linspace(0.0, 1.0, r, device=edges.device, dtype=edges.dtype).expand(edges.shape[0], r)
    u = u.contiguous()
    above = torch.searchsorted(cdf.contiguous(), u, right=True).clamp(1, k)
    below = above - 1
    c0, c1 = cdf.gather(-1, below), cdf.gather(-1, above)
    e0, e1 = edges.gather(-1, below), edges.gather(-1, above)
    f = ((u - c0) / (c1 - c0).clamp_min(1e-12)).clamp(0.0, 1.0)
    return e0 + f * (e1 - e0)


def outer_envelope(edges: Tensor, env_edges: Tensor, env_weights: Tensor) -> Tensor:
    """``[R, K]``: for each interval of ``edges [R, K + 1]``, the summed ``env_weights [R, M]`` of every
    interval of ``env_edges [R, M + 1]`` that overlaps it (mip-NeRF 360's ``outer``)."""
    cum = torch.cat([torch.zeros_like(env_weights[:, :1]), torch.cumsum(env_weights, -1)], -1)
    m = env_edges.shape[-1] - 1
    idx = torch.searchsorted(env_edges.contiguous(), edges.contiguous(), right=True)
    lo, hi = (idx - 1).clamp(0, m), idx.clamp(0, m)
    return cum.gather(-1, hi[:, 1:]) - cum.gather(-1, lo[:, :-1])


def interlevel_loss(edges: Tensor, weights: Tensor, env_edges: Tensor, env_weights: Tensor) -> Tensor:
    """Penalty where ``weights [R, K]`` exceed the proposal envelope (gradients reach the proposal only)."""
    excess = (weights.detach() - outer_envelope(edges.detach(), env_edges.detach(), env_weights)).clamp_min(0)
    return (excess**2 / (weights.detach() + 1e-7)).mean()


def distortion_loss(edges: Tensor, weights: Tensor) -> Tensor:
    """mip-NeRF 360's distortion loss of ``weights [R, K]`` on intervals ``edges [R, K + 1]`` (normalised
    distance): ``sum_ij w_i w_j |m_i - m_j| + sum_i w_i^2 (s_i+1 - s_i) / 3``, in O(K) per ray."""
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    width = edges[:, 1:] - edges[:, :-1]
    w_before = torch.cumsum(weights, -1) - weights
    wm_before = torch.cumsum(weights * mid, -1) - weights * mid
    between = 2 * (weights * (mid * w_before - wm_before)).sum(-1)
    within = (weights**2 * width).sum(-1) / 3
    return (between + within).mean()


@dataclass
class ProposalSettings:
    """The render settings the proposal sampler reads (names as in the run's render config)."""

    proposal_samples: list[int] = field(default_factory=lambda: [64, 32])  # intervals per proposal level
    samples_per_ray: int = 24  # final intervals, evaluated by the scene's field
    proposal_max_res: list[int] = field(default_factory=lambda: [128, 256])
    proposal_anneal_steps: int = 500
    proposal_update_every: int = 4
    interlevel_weight: float = 1.0
    distortion_weight: float = 0.002
    far: float = 1000.0
    render_step_size: float | None = None
    samples_per_diagonal: int = 512


@dataclass
class Proposals:
    """What the proposal levels said about a batch: per level ``(edges [R, K + 1], weights [R, K])``
    in normalised distance, and the final edges ``[R, K + 1]`` of the packed samples."""

    levels: list[tuple[Tensor, Tensor]]
    final_edges: Tensor


@SAMPLERS.register("proposal")
class ProposalSampler(nn.Module):
    """Proposal-network sampler over a bounded box or a contracted unbounded space.

    Args:
        aabb: ``[2, 3]`` scene box (bounded spaces: rays are clipped to it).
        space: world -> field coordinates; with ``space.unbounded`` rays run from ``near`` to
            ``settings.far`` inner-box half sizes and distances are spaced linearly then in disparity.
        settings: samples per proposal level and in the end, the networks' resolutions, annealing,
            update cadence and loss weights.
    """

    Settings = ProposalSettings
    grid = world_grid = None  # no occupancy grid

    def __init__(self, aabb: Tensor, space, settings: ProposalSettings | None = None, near: float = 0.0,
                 times: Tensor | None = None, **_):
        super().__init__()
        if times is not None:
            raise NeuralFieldsError("the proposal sampler does not model time; use --set render.sampler=occupancy "
                                    "for dynamic scenes")
        self.settings, self.space, self.near = settings or ProposalSettings(), space, near
        c = self.settings
        if len(c.proposal_max_res) != len(c.proposal_samples):
            raise NeuralFieldsError("render.proposal_max_res needs one resolution per entry of render.proposal_samples")
        self.networks = nn.ModuleList(ProposalDensity(r) for r in c.proposal_max_res)
        self.span = RaySpan(space, aabb, near, c.far)
        self.diagonal = self.span.diagonal
        self.step_size = c.render_step_size or self.diagonal / c.samples_per_diagonal
        self.anneal, self.train_networks = 1.0, True

    @property
    def initial_samples_per_ray(self) -> int:
        return self.settings.samples_per_ray

    # ------------------------------------------------------------------------- sampling
    def sample(self, rays: RayBatch, density_fn: DensityFn | None = None,
               training: bool = False) -> tuple[PackedSamples, dict]:
        """``samples_per_ray`` packed samples on every ray, and ``{"proposals": Proposals}`` for
        :meth:`losses` (the scene's density is not queried: the proposal networks place samples)."""
        c, n = self.settings, len(rays)
        near, far = self.span.ray_range(rays)
        k0 = c.proposal_samples[0]
        s = torch.linspace(0.0, 1.0, k0 + 1, device=rays.device).expand(n, k0 + 1)
        if training:  # one random shift per ray keeps the uniform edges sorted
            s = (s + torch.rand(n, 1, device=rays.device) / k0).clamp(max=1.0)
            s = torch.cat([torch.zeros_like(s[:, :1]), s[:, 1:]], -1)
        levels = []
        counts = [*c.proposal_samples[1:], c.samples_per_ray]
        for network, count in zip(self.networks, counts):
            t = self.span.to_distance(s, near, far)
            mid = 0.5 * (t[:, 1:] + t[:, :-1])
            points = rays.origins[:, None] + rays.dirs[:, None] * mid[..., None]
            with torch.set_grad_enabled(training and self.train_networks and torch.is_grad_enabled()):
                sigma = network(self.space(points.reshape(-1, 3))).reshape(n, -1)
                weights = dense_weights(t, sigma)
            levels.append((s, weights))
            # Flattened histograms only while training: renders (eval, a reloaded checkpoint) see the true weights.
            power = self.anneal if training else 1.0
            s = resample(s, weights.detach() ** power, count, jitter=training).detach()
        t = self.span.to_distance(s, near, far)
        k = t.shape[-1] - 1
        ray_indices = torch.arange(n, device=rays.device).repeat_interleave(k)
        samples = PackedSamples(ray_indices, t[:, :-1].reshape(-1), t[:, 1:].reshape(-1), n)
        return samples, {"proposals": Proposals(levels, s)}

    def may_sample(self, u: Tensor, cell_length: Tensor, min_alpha: float = 1e-3) -> Tensor:
        """``[N]`` bool: would the last proposal level place samples at field points ``u [N, 3]``?
        True where its density stops at least ``min_alpha`` of the light over ``cell_length [N]``
        (world units). Elsewhere the scene's field was never asked, and its density there means
        nothing (bakes keep density only where this holds)."""
        return self.networks[-1](u) * cell_length >= -math.log1p(-min_alpha)

    def losses(self, aux: dict, weights: Tensor) -> dict[str, Tensor]:
        """Training losses of one batch, from the scene field's ``weights [S]`` on the samples that
        came with ``aux``: the interlevel loss (trains the proposal fields) and the distortion loss
        (trains the scene's field to keep each ray's weight compact: no fog in front of the cameras)."""
        proposals = aux.get("proposals")
        if proposals is None:
            return {}
        c = self.settings
        final = weights.reshape(proposals.final_edges.shape[0], -1)
        out = {}
        if any(w.requires_grad for _, w in proposals.levels):
            out["interlevel"] = c.interlevel_weight * sum(interlevel_loss(proposals.final_edges, final, s, w)
                                                          for s, w in proposals.levels)
        if c.distortion_weight > 0 and final.requires_grad:
            out["distortion"] = c.distortion_weight * distortion_loss(proposals.final_edges, final)
        return out

    def update(self, step: int, density_fn: DensityFn | None = None) -> bool:
        """Anneal the histograms, and choose whether this step trains the proposal fields (no
        state to share between ranks: False)."""
        c = self.settings
        x = min(max(step / max(c.proposal_anneal_steps, 1), 0.0), 1.0)
        slope = 10.0
        self.anneal = slope * x / ((slope - 1) * x + 1)
        self.train_networks = step < c.proposal_anneal_steps or step % max(c.proposal_update_every, 1) == 0
        return False

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]:
        """The proposal fields' optimiser group (as fields give theirs)."""
        return [{"params": list(self.parameters()), "lr": lr, "weight_decay": weight_decay}]
