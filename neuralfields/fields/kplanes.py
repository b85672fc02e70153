"""``kplanes``: direct space-time factorisation of a dynamic scene (K-Planes, Fridovich-Keil et al. 2023).

Six planes over ``(x, y, z, t)`` -- three spatial planes and three pairing each spatial axis with
time -- are sampled and multiplied per resolution, then decoded as in :mod:`.triplane`. There is
no canonical space: the space-time planes change the features directly, which represents
appearance changes as well as motion but shares less across time than :mod:`.deform`.

Space-time planes start at 1 (the scene starts static) and are regularised towards smooth motion
(``time_smoothness_weight``, second differences along time) and towards staying at 1 where nothing
moves (``time_l1_weight``). ``time_modulation`` adds CAM's 1-D time grid that rescales and shifts
the decoders' hidden features (see :mod:`.time_modulation`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .base import Modulate, register_field
from .time_modulation import TimeModulation
from .triplane import TriplaneConfig, TriplaneField


@dataclass
class SpaceTimeOptions:
    """Time-axis options shared by the dynamic plane fields (``kplanes``, ``deform``)."""

    time_resolution: int = 25  # cells along time in the space-time planes (D-NeRF: 50-200 frames)
    time_smoothness_weight: float = 1e-3  # second difference along time of the space-time planes
    time_l1_weight: float = 1e-4  # |1 - plane| of the space-time planes: static parts stay static
    time_modulation: bool = False  # CAM-style 1-D time grid scaling/shifting the decoders' hidden features
    time_modulation_resolution: int = 32
    time_modulation_norm: str = "none"  # none | layer (normalise pre-activations before modulating)


def time_or_zero(x: Tensor, t: Tensor | None) -> Tensor:
    """``t [N, 1]``, or zeros when a dynamic field is queried without time (shows time 0)."""
    return x.new_zeros(x.shape[0], 1) if t is None else t.reshape(-1, 1).to(x.dtype)


def with_time(x: Tensor, t: Tensor | None) -> Tensor:
    """``[N, D + 1]``: points ``x [N, D]`` and times ``t [N, 1]`` as they are (None -> time 0)."""
    return torch.cat([x, time_or_zero(x, t)], dim=-1)


@dataclass
class KPlanesConfig(SpaceTimeOptions, TriplaneConfig):
    pass


@register_field("kplanes", KPlanesConfig)
class KPlanesField(TriplaneField):
    """``(x, t)`` -> 6 planes -> MLP -> (raw density, geo); (SH(d), geo) -> MLP -> colour."""

    time_dependent = True

    def __init__(self, cfg: KPlanesConfig, in_dim: int = 3, view_dependent: bool = True, out_dim: int = 3, **context):
        context.pop("time_dependent", None)
        super().__init__(cfg, in_dim=in_dim, view_dependent=view_dependent, out_dim=out_dim,
                         time_dims=(in_dim,), time_resolution=cfg.time_resolution, **context)
        self.density_modulation = self.color_modulation = None
        if cfg.time_modulation:
            self.density_modulation = TimeModulation(self.density_net.n_sites, cfg.hidden,
                                                     cfg.time_modulation_resolution, cfg.time_modulation_norm)
            self.color_modulation = TimeModulation(self.color_net.n_sites, cfg.hidden,
                                                   cfg.time_modulation_resolution, cfg.time_modulation_norm)

    def raw_density(self, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return super().raw_density(x, time_or_zero(x, t))

    def color(self, x: Tensor, d: Tensor | None, geo: Tensor, t: Tensor | None = None) -> Tensor:
        return super().color(x, d, geo, time_or_zero(x, t))

    def plane_inputs(self, x: Tensor, t: Tensor | None) -> Tensor:
        return with_time(x, t)

    def modulators(self, t: Tensor | None) -> tuple[Modulate | None, Modulate | None]:
        if self.density_modulation is None or t is None:
            return None, None
        return self.density_modulation.modulator(t), self.color_modulation.modulator(t)

    def regularization(self) -> Tensor | None:
        c = self.cfg
        return self.encoding.regularization(tv=c.tv_weight, l1=c.l1_weight, time_smoothness=c.time_smoothness_weight,
                                            time_l1=c.time_l1_weight)

    def grid_parameters(self) -> list[nn.Parameter]:
        grids = list(self.encoding.parameters())
        for mod in (self.density_modulation, self.color_modulation):
            if mod is not None:
                grids += list(mod.parameters())
        return grids
