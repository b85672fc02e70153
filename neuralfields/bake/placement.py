"""How a baked run places its samples: each trained sampler registers what it caches and the
sampler that renders from the cache.

- ``occupancy`` (objects, occupancy-grid runs): nothing more than the lattice; rays march through
  its kept blocks (:class:`~neuralfields.bake.sampler.BakedSampler`).
- ``proposal`` (real captures): the proposal networks decided where the field was ever asked,
  so the bake keeps them, as dense grids (:mod:`~neuralfields.bake.proposal`); a dense march
  would also show the fog they kept the field from (hazier fox renders; docs/bake.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor, nn

from ..scene_model import SceneModel
from ..registry import Registry
from ..render.samplers.span import RaySpan
from .lattice import BlockLattice
from .proposal import DenseDensity, bake_density, with_networks
from .sampler import BakedSampler, MarchConfig


@dataclass(frozen=True)
class Placement:
    """``cache(model) -> tensors`` saved with the bake; ``build(model, lattice, tensors, march) -> sampler``.
    ``whole_views``: render a view in one chunk of rays (the lattice march pays fixed work per
    chunk); otherwise the run's own chunk size (the proposal sampler's per-sample tensors stay in
    the caches, so a fox view renders faster than in whole-view chunks; docs/bake.md).
    ``box_spaces_only``: it marches world points through a box or contracted space only."""

    cache: Callable[[SceneModel], dict[str, Tensor]]
    build: Callable[[SceneModel, BlockLattice, dict[str, Tensor], MarchConfig], nn.Module]
    whole_views: bool = True
    # The sampler maps world points itself, in compiled kernels that inline a box or contracted
    # space (``space.fused``); NDC runs cannot use it.
    box_spaces_only: bool = False


PLACEMENTS: Registry[Placement] = Registry("baked sampler")


def march_lattice(model: SceneModel, lattice: BlockLattice, _: dict, march: MarchConfig) -> nn.Module:
    span = RaySpan(model.space, model.info.aabb, model.cfg.data.near, model.cfg.render.far).to(model.device)
    return BakedSampler(lattice, model.space, span, model.field.density_activation, march)


PLACEMENTS.register("occupancy", Placement(lambda model: {}, march_lattice, box_spaces_only=True))


def cache_proposals(model: SceneModel) -> dict[str, Tensor]:
    return {f"density_{i}": bake_density(net) for i, net in enumerate(model.sampler.networks)}


def proposal_grids(model: SceneModel, _: BlockLattice, cached: dict[str, Tensor], __: MarchConfig) -> nn.Module:
    grids = [DenseDensity(cached[f"density_{i}"]).to(model.device) for i in range(len(model.sampler.networks))]
    return with_networks(model.sampler, grids).eval()


PLACEMENTS.register("proposal", Placement(cache_proposals, proposal_grids, whole_views=False))
