"""Samplers: rays -> packed samples, as estimators that know no field (nerfacc's idea).

A sampler is handed a density function and never the field behind it::

    density_fn(points [N, 3] world, times [N, 1] | None) -> sigma [N]

and answers

- ``sample(rays, density_fn, training) -> (PackedSamples, aux)``: samples along ``rays`` (it may
  query ``density_fn`` to place or prune them); ``aux`` holds named outputs of its own that its
  losses need (a proposal sampler's histograms), an empty dict when it has none;
- ``update(step, density_fn)``: called once before every training step; the sampler keeps its
  own cadence (an occupancy grid refreshes every ``n`` steps, proposal histograms anneal);
- ``losses(aux, weights) -> {name: loss}``: what the sampler learns from the scene field's
  rendering ``weights [S]`` (empty for samplers with nothing to learn);
- ``param_groups(lr, weight_decay)``: its own trainable parameters (empty when none);
- ``may_sample(u, cell_length) -> [N] bool``: whether it would ever place samples at field points
  ``u`` (bakes keep density only there);
- ``grid`` / ``world_grid``: its occupancy grid (None without one); ``world_grid`` only when
  the cells are world-space boxes (exporters crop and cull with it).

Samplers are ``nn.Module``s (their state moves with ``.to`` and is saved through
``state_dict``), take numbers at construction (a settings dataclass each, filled from the render
config by :func:`settings_from`), and register in :data:`SAMPLERS`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol, TypeVar

from torch import Tensor

from ...registry import Registry
from ..marching import PackedSamples
from ..occupancy import OccupancyGrid
from ..rays import RayBatch

SAMPLERS: Registry[type] = Registry("sampler")

DensityFn = Callable[[Tensor, Tensor | None], Tensor]  # world points [N, 3], times [N, 1] | None -> sigma [N]

S = TypeVar("S")


def settings_from(kind: type[S], source: Any) -> S:
    """A sampler's settings dataclass ``kind`` filled from the same-named fields of ``source`` (the
    run's render settings); fields ``source`` lacks keep their defaults."""
    names = [f.name for f in dataclasses.fields(kind)]
    return kind(**{n: getattr(source, n) for n in names if hasattr(source, n)})


class Sampler(Protocol):
    step_size: float  # the reference step along a ray (world units)
    initial_samples_per_ray: int  # samples a ray gets before any state has been learnt (batch sizing)
    grid: OccupancyGrid | None
    world_grid: OccupancyGrid | None

    def sample(self, rays: RayBatch, density_fn: DensityFn, training: bool = False) -> tuple[PackedSamples, dict]: ...

    def update(self, step: int, density_fn: DensityFn) -> None: ...

    def losses(self, aux: dict, weights: Tensor) -> dict[str, Tensor]: ...

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]: ...

    def may_sample(self, u: Tensor, cell_length: Tensor) -> Tensor: ...

    def state_dict(self) -> dict[str, Tensor]: ...


from .occupancy import GridUpdate, OccupancySampler  # noqa: E402  (registers itself)
from .proposal import ProposalSampler  # noqa: E402  (registers itself)

# ``render.sampler = "auto"``: the faster sampler per CPU second on real captures (docs/bench_real.md).
AUTO_SAMPLER = {False: "occupancy", True: "proposal"}


def sampler_for(name: str, unbounded: bool) -> str:
    """The sampler a run uses: ``name``, or for ``auto`` the faster one for bounded/unbounded spaces."""
    return AUTO_SAMPLER[unbounded] if name == "auto" else name


__all__ = ["AUTO_SAMPLER", "DensityFn", "SAMPLERS", "GridUpdate", "OccupancySampler", "ProposalSampler", "Sampler",
           "sampler_for", "settings_from"]
