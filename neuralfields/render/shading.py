"""THE one function that shades packed samples with a field, and its density-only sibling.

Training, scoring, image and video rendering, normals, mesh colours, point clouds and both
sides of distillation call :func:`shade`; pruning, occupancy updates and density volumes call
:func:`density_at` (through the scene model's density function). Nothing else maps samples to
field inputs or composites them.

One sample's field inputs: ``x = space(origin + t_mid * dir)`` in ``[-1, 1]^3``, the ray's unit
direction and, for dynamic scenes, the ray's time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..fields.base import Field
from .compositing import accumulate, composite, render_weights
from .marching import PackedSamples
from .rays import RayBatch

Space = Callable[[Tensor], Tensor]  # world points [N, 3] -> field coordinates [N, 3]

# Rows per field query when rendering on a CPU: an MLP's intermediates for a whole view's samples
# spill out of the caches, and the same colour head runs several times faster on 16k-row pieces
# (docs/bake.md).
CPU_QUERY_ROWS = 1 << 14


def in_pieces(fn: Callable[..., Tensor | tuple[Tensor, ...]], *args: Tensor | None,
              rows: int = CPU_QUERY_ROWS) -> Tensor | tuple[Tensor, ...]:
    """``fn(*args)`` over pieces of ``rows`` rows of its tensor arguments (None passes through), the
    outputs (a tensor or a tuple of them) concatenated. Only without gradients on a CPU: autograd
    keeps every piece's intermediates anyway, and a GPU wants one big launch."""
    first = next(a for a in args if a is not None)
    if torch.is_grad_enabled() or first.device.type != "cpu" or first.shape[0] <= rows:
        return fn(*args)
    outs = [fn(*(None if a is None else a[i:i + rows] for a in args)) for i in range(0, first.shape[0], rows)]
    return tuple(torch.cat(part) for part in zip(*outs)) if isinstance(outs[0], tuple) else torch.cat(outs)


@dataclass
class SampleOutputs:
    """What the field says at each of ``S`` samples.

    Attributes:
        x: ``[S, 3]`` field coordinates; dirs: ``[S, 3]`` unit view directions;
        times: ``[S, 1]`` or None.
        raw, sigma: ``[S]`` pre-activation density and density; geo: ``[S, F]`` geometry features;
        rgb: ``[S, 3]`` colour; normal: ``[S, 3]`` world-space unit normal (when asked for).
    """

    x: Tensor
    dirs: Tensor
    times: Tensor | None
    raw: Tensor
    sigma: Tensor
    geo: Tensor
    rgb: Tensor
    normal: Tensor | None = None


@dataclass
class RenderOutputs:
    """Composited buffers of ``R`` rays and the per-sample values behind them.

    Attributes:
        rgb: ``[R, 3]`` (over the batch's background when it has one); opacity, depth: ``[R]``;
        normal: ``[R, 3]`` weight-averaged unit normals (when asked for);
        weights: ``[S]`` rendering weights; samples: the packed intervals; per_sample: field values;
        aux: the sampler's own named outputs for its losses (see ``render.samplers``).
    """

    rgb: Tensor
    opacity: Tensor
    depth: Tensor
    weights: Tensor
    samples: PackedSamples
    per_sample: SampleOutputs
    normal: Tensor | None = None
    aux: dict = dataclasses.field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    def buffer(self, name: str) -> Tensor:
        value = getattr(self, name)
        if value is None:
            raise KeyError(f"buffer '{name}' was not rendered")
        return value


def sample_points(samples: PackedSamples, rays: RayBatch) -> Tensor:
    """World positions ``[S, 3]`` of the interval midpoints."""
    return samples.midpoints(rays.origins, rays.dirs)


def density_at(field: Field, space: Space, points: Tensor, time: float | Tensor | None = None) -> Tensor:
    """Density ``[N]`` at world ``points [N, 3]``; ``time`` is one time for all points, ``[N]`` or ``[N, 1]``."""
    t = None
    if time is not None:
        t = torch.as_tensor(time, dtype=points.dtype, device=points.device).reshape(-1).expand(points.shape[0])
        t = t.reshape(-1, 1)
    return in_pieces(field.density, space(points), t)[0]


def color_of(field: Field, x: Tensor, d: Tensor, geo: Tensor, t: Tensor | None, codes: Tensor | None) -> Tensor:
    """The field's colour ``[S, 3]``, passing appearance codes only to fields that read them."""
    if codes is None:
        return in_pieces(lambda *a: field.color(*a), x, d, geo, t)
    return in_pieces(lambda x, d, geo, t, codes: field.color(x, d, geo, t, appearance=codes), x, d, geo, t, codes)


def shade_per_ray(field: Field, weights: Tensor, x: Tensor, geo: Tensor, idx: Tensor, rays: RayBatch,
                  ray_codes: Tensor | None) -> Tensor:
    """Colour ``[R, 3]`` of each ray from the point and features averaged with ``weights [S]`` and
    the ray's own direction, time and appearance code (``ray_codes [R, C]``; black for rays with no weight)."""
    n = len(rays)
    opacity = accumulate(weights, None, idx, n)
    hit = (opacity > 0).nonzero()[:, 0]
    norm = opacity[hit, None]
    xs = accumulate(weights, x, idx, n)[hit] / norm
    feats = accumulate(weights, geo, idx, n)[hit] / norm
    t = None if rays.times is None else rays.times[hit, None]
    codes = None if ray_codes is None else ray_codes[hit]
    shaded = color_of(field, xs, rays.dirs[hit], feats, t, codes)
    return shaded.new_zeros(n, shaded.shape[-1]).index_copy_(0, hit, shaded)


def shade(field: Field, space: Space, samples: PackedSamples, rays: RayBatch, normals: bool = False,
             composite_background: bool = True, appearance: Callable[[Tensor | None, int], Tensor] | None = None,
             skip_color_below: float = 0.0, ray_color_below: float = 0.0) -> RenderOutputs:
    """Query ``field`` at ``samples`` of ``rays`` and composite them.

    Gradients flow to the field unless the caller runs under ``torch.no_grad``. With ``normals``
    each sample also gets the world-space normal ``-grad sigma / |grad sigma|`` (density rises
    into matter), taken by autograd through the space map and the field's density, and the
    rays get the weight-averaged normal. ``composite_background=False`` leaves colour
    premultiplied (transparent where the ray hits nothing). ``appearance(image_ids, n) -> [n, C]``
    gives each ray's appearance code (:class:`~neuralfields.fields.appearance.AppearanceCodes`)
    for fields whose colour head reads one. Without gradients, ``skip_color_below > 0`` leaves
    samples whose rendering weight is below it black instead of querying their colour.
    ``ray_color_below > 0`` (rendering only; deferred shading, as SNeRG renders baked scenes)
    queries the colour of samples weighing at least that on their own, and gives the lighter rest
    of each ray one colour, queried once from their weight-averaged point and features: a surface
    keeps its own colours, and fog costs one query per pixel instead of one per sample.
    """
    idx = samples.ray_indices
    world = sample_points(samples, rays)
    t = rays.sample_times(idx)
    normal = None
    if normals:
        with torch.enable_grad():
            world = world.detach().requires_grad_(True)
            x = space(world)
            raw, geo = field.raw_density(x, t)
            sigma = field.density_activation(raw)
            (grad,) = torch.autograd.grad(sigma.sum(), world)
        normal = -grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        x, raw, geo, sigma = x.detach(), raw.detach(), geo.detach(), sigma.detach()
    else:
        x = space(world)
        raw, geo = in_pieces(field.raw_density, x, t)
        sigma = field.density_activation(raw)
    d = rays.dirs[idx]
    ray_codes = None if appearance is None else appearance(rays.image_ids, len(rays))
    codes = None if ray_codes is None else ray_codes[idx]
    weights = None
    if ray_color_below > 0 and not torch.is_grad_enabled() and len(samples):
        weights = render_weights(samples.t_starts, samples.t_ends, sigma, idx)[0]
        own = weights >= ray_color_below
        pick = own.nonzero()[:, 0]
        shown = color_of(field, x[pick], d[pick], geo[pick], None if t is None else t[pick],
                         None if codes is None else codes[pick])
        shared = shade_per_ray(field, torch.where(own, torch.zeros_like(weights), weights), x, geo, idx, rays,
                               ray_codes)
        rgb = shared[idx].index_copy_(0, pick, shown)
    elif skip_color_below > 0 and not torch.is_grad_enabled() and len(samples):
        # Rendering only: samples that cannot show (weight below the bar) get no colour query.
        weights = render_weights(samples.t_starts, samples.t_ends, sigma, idx)[0]
        pick = (weights > skip_color_below).nonzero()[:, 0]
        shown = color_of(field, x[pick], d[pick], geo[pick], None if t is None else t[pick],
                         None if codes is None else codes[pick])
        rgb = shown.new_zeros(len(samples), shown.shape[-1]).index_copy_(0, pick, shown)
    else:
        rgb = color_of(field, x, d, geo, t, codes)
    background = rays.background if composite_background else None
    out = composite(samples.t_starts, samples.t_ends, sigma, rgb, idx, len(rays), background, weights)
    ray_normal = None
    if normal is not None:
        n = accumulate(out["weights"], normal, idx, len(rays))
        ray_normal = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return RenderOutputs(out["rgb"], out["opacity"], out["depth"], out["weights"], samples,
                         SampleOutputs(x, d, t, raw, sigma, geo, rgb, normal), ray_normal)
