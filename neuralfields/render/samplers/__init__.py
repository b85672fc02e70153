"""Samplers: rays -> packed samples, behind one small interface.

A sampler ``sample(field, rays, training) -> PackedSamples`` places samples along rays (it may
query the field's density to do so) and owns whatever state that takes, with its own update
cadence: ``update(step, field)`` is called once before every training step and decides itself
whether to do anything. A sampler with parameters of its own (proposal fields) also has
``param_groups(lr)`` and ``loss(samples, weights)``, which the training objective adds.
Samplers are ``nn.Module``s, so their state moves with ``.to(device)`` and is saved through
``state_dict``. New samplers register in :data:`SAMPLERS`.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor

from ...fields.base import Field
from ...registry import Registry
from ..marching import PackedSamples
from ..rays import RayBatch

SAMPLERS: Registry[type] = Registry("sampler")


class Sampler(Protocol):
    step_size: float  # the reference step along a ray (world units)
    initial_samples_per_ray: int  # samples a ray gets before any state has been learnt (batch sizing)

    def sample(self, field: Field, rays: RayBatch, training: bool = False) -> PackedSamples: ...

    def update(self, step: int, field: Field) -> None: ...

    def state_dict(self) -> dict[str, Tensor]: ...


from .occupancy import GridUpdate, OccupancySampler  # noqa: E402  (registers itself)
from .proposal import ProposalSampler  # noqa: E402  (registers itself)

# ``render.sampler = "auto"``: measured per CPU second on real captures (docs/bench_real.md).
AUTO_SAMPLER = {False: "occupancy", True: "proposal"}


def sampler_for(name: str, unbounded: bool) -> str:
    """The sampler a run uses: ``name``, or for ``auto`` the faster one for bounded/unbounded spaces."""
    return AUTO_SAMPLER[unbounded] if name == "auto" else name


__all__ = ["AUTO_SAMPLER", "SAMPLERS", "GridUpdate", "OccupancySampler", "ProposalSampler", "Sampler", "sampler_for"]
