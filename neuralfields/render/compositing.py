"""Volume compositing of packed samples (pure PyTorch).

Samples are *packed*: one flat list sorted by ray, then by distance, with ``ray_indices [S]``
naming each sample's ray. For a ray with samples i, optical thickness ``tau_i = sigma_i dt_i``,
``alpha_i = 1 - exp(-tau_i)``, transmittance ``T_i = exp(-sum_{j<i} tau_j)`` and weight
``w_i = T_i alpha_i``; colour, depth and opacity are weight-sums per ray.
"""

from __future__ import annotations

import torch
from torch import Tensor


def segment_starts(ray_indices: Tensor) -> Tensor:
    """``[S]`` bool: True at the first sample of each ray (samples sorted by ray)."""
    starts = torch.ones_like(ray_indices, dtype=torch.bool)
    starts[1:] = ray_indices[1:] != ray_indices[:-1]
    return starts


# Fixed-point units per unit value in segment sums: exact int64 sums for totals below 2^31 (a batch
# of 16M samples at the largest thickness compositing passes, TAU_MAX).
FIXED_POINT = float(1 << 32)
# Beyond this thickness float32 has no transparency left (exp(-128) is 0): clamping changes no
# value or gradient, keeps one infinite density from turning sums into NaN and bounds the totals.
TAU_MAX = 128.0


def exclusive_segment_cumsum(values: Tensor, ray_indices: Tensor) -> Tensor:
    """``[S]`` sum of the values before each sample within its ray.

    One global cumulative sum minus the running total at each ray's first sample. In float32 that
    total would swamp a ray's own sum over tens of thousands of samples. On the CPU the sum runs in
    float64; float64 is slow or missing on many accelerators, so there the value is summed in int64
    fixed point (exact, 2^-32 per value) and the gradient flows through the float32 sum (its
    rounding, relative to the batch's total, is the price).
    """
    if values.numel() == 0:
        return values
    first = segment_first(ray_indices)
    if values.device.type == "cpu":
        # The host has float64 at full speed, and its gradient does not depend on other rays.
        v64 = values.double()
        before = torch.cumsum(v64, 0) - v64
        return (before - before.index_select(0, first)).to(values.dtype)
    return fixed_point_segment_cumsum(values, first)


def fixed_point_segment_cumsum(values: Tensor, first: Tensor) -> Tensor:
    """:func:`exclusive_segment_cumsum` on accelerators, given each sample's segment start ``first [S]``."""
    fixed = torch.round(values.detach() * FIXED_POINT).long()
    before = torch.cumsum(fixed, 0) - fixed
    exact = (before - before.index_select(0, first)).to(values.dtype) / FIXED_POINT
    if not values.requires_grad:
        return exact
    approx = torch.cumsum(values, 0) - values
    approx = approx - approx.index_select(0, first)
    return approx + (exact - approx).detach()


def segment_first(ray_indices: Tensor) -> Tensor:
    """``[S]`` index of the first sample of each sample's ray (samples sorted by ray)."""
    positions = torch.arange(len(ray_indices), device=ray_indices.device)
    return torch.cummax(torch.where(segment_starts(ray_indices), positions, torch.zeros_like(positions)), 0).values


def render_weights(t_starts: Tensor, t_ends: Tensor, sigmas: Tensor, ray_indices: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Weights, transmittance and alphas ``[S]`` of packed samples."""
    tau = (sigmas * (t_ends - t_starts)).clamp(max=TAU_MAX)
    transmittance = torch.exp(-exclusive_segment_cumsum(tau, ray_indices))
    alphas = 1.0 - torch.exp(-tau)
    return transmittance * alphas, transmittance, alphas


def dense_weights(edges: Tensor, sigma: Tensor) -> Tensor:
    """Rendering weights ``[R, K]`` of densities ``sigma [R, K]`` on intervals with ``edges [R, K + 1]``
    (every ray the same count of samples: the proposal sampler's histograms)."""
    tau = (sigma * (edges[:, 1:] - edges[:, :-1])).clamp(max=TAU_MAX)
    before = torch.cumsum(tau, dim=-1) - tau
    return torch.exp(-before) * (1.0 - torch.exp(-tau))


def accumulate(weights: Tensor, values: Tensor | None, ray_indices: Tensor, n_rays: int) -> Tensor:
    """Per-ray weighted sum: ``[n_rays, C]`` for values ``[S, C]``, ``[n_rays]`` for None (opacity)."""
    if values is None:
        return torch.zeros(n_rays, dtype=weights.dtype, device=weights.device).index_add(0, ray_indices, weights)
    out = torch.zeros(n_rays, values.shape[-1], dtype=values.dtype, device=values.device)
    return out.index_add(0, ray_indices, weights[:, None] * values)


def composite(t_starts: Tensor, t_ends: Tensor, sigmas: Tensor, rgbs: Tensor, ray_indices: Tensor, n_rays: int,
              background: Tensor | None = None, weights: Tensor | None = None) -> dict[str, Tensor]:
    """Render packed samples to per-ray buffers.

    Returns ``rgb [n_rays, 3]`` (over ``background`` ``[3]`` or ``[n_rays, 3]`` when given),
    ``opacity [n_rays]``, ``depth [n_rays]`` (expected distance, divided by opacity so that
    partially covered rays still report the surface distance) and the sample ``weights [S]``.
    ``weights`` may be passed when the caller already has them for these ``sigmas``.
    """
    if weights is None:
        weights = render_weights(t_starts, t_ends, sigmas, ray_indices)[0]
    opacity = accumulate(weights, None, ray_indices, n_rays)
    rgb = accumulate(weights, rgbs, ray_indices, n_rays)
    depth = accumulate(weights, ((t_starts + t_ends) * 0.5)[:, None], ray_indices, n_rays)[:, 0]
    depth = depth / opacity.clamp_min(1e-10)
    if background is not None:
        rgb = rgb + (1.0 - opacity)[:, None] * background
    return {"rgb": rgb, "opacity": opacity, "depth": depth, "weights": weights}


def composite_dense(deltas: Tensor, sigmas: Tensor, rgbs: Tensor) -> tuple[Tensor, Tensor]:
    """Test reference on dense ``[R, S]`` samples, by another route on purpose (a cumulative product of
    transparencies): rgb ``[R, 3]`` and weights ``[R, S]``."""
    alphas = 1.0 - torch.exp(-sigmas * deltas)
    trans = torch.cumprod(torch.cat([torch.ones_like(alphas[:, :1]), 1.0 - alphas[:, :-1] + 1e-10], dim=1), dim=1)
    weights = trans * alphas
    return (weights[..., None] * rgbs).sum(1), weights
