"""``deform``: a space-time deformation into a canonical space, followed by any static field.

Dynamic scenes (D-NeRF: one pose and one time per image) are modelled as one static scene --
the canonical field, any registered static field (``ngp`` by default, ``triplane``, ``cam``...)
-- seen through a time-dependent warp:

    x_canonical = x + D(x, t),   sigma(x, t), rgb(x, d, t) = canonical(x_canonical, d)

``D`` is explicit and cheap (HexPlane / K-Planes style, as in SHaDe's tri-plane deformation):
six feature planes over ``(x, y, z, t)`` -- three spatial ones and three pairing each spatial
axis with time -- multiplied per resolution and decoded by a small MLP into a 3-vector offset.
The decoder's last layer starts at zero, so the warp is exactly the identity at initialisation
and the canonical field first learns the average scene. The planes are regularised by total
variation over space (``tv_weight``), smoothness over time (``time_smoothness_weight``) and
``|1 - plane|`` on the space-time planes (``time_l1_weight``: no motion unless the images need
it). ``time_modulation`` adds CAM's 1-D time grid on the deformation decoder (see :mod:`.time_modulation`).

Geometry features are the canonical field's, so colour heads, distillation and exporters see
the same interface as for static fields. A dynamic field queried without time shows time 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..encodings import PlaneEncoding
from ..errors import NeuralFieldsError
from .base import FIELDS, Field, ModulatedMLP, build_field, register_field
from .kplanes import SpaceTimeOptions, time_or_zero, with_time
from .time_modulation import TimeModulation


@dataclass
class DeformConfig(SpaceTimeOptions):
    canonical: str = "ngp"  # any static registered field
    canonical_options: dict = field(default_factory=dict)  # that field's options
    n_features: int = 16  # channels per deformation plane
    resolutions: list[int] = field(default_factory=lambda: [32, 64])  # spatial plane sizes per level
    init_range: list[float] = field(default_factory=lambda: [0.5, 1.5])  # features ~1: the decoder sees space and time vary from the start
    hidden: int = 64
    layers: int = 2  # hidden layers of the deformation decoder
    # Deformation planes' learning rate relative to the decoder's. Higher rates (10x, as for
    # canonical planes, or 3x) made the warp blow up in long runs, as did Adam's beta2 = 0.999
    # (train.adam_beta2; docs/dynamic.md).
    plane_lr_scale: float = 1.0
    # The decoder starts at zero, so early data gradients on the planes are tiny: regularisers as
    # strong as K-Planes' would pin the planes and the warp would never start to move.
    tv_weight: float = 1e-5  # total variation of the spatial deformation planes
    time_smoothness_weight: float = 1e-4
    time_l1_weight: float = 0.0
    # The offset is bounded smoothly, ``max_offset * tanh(raw / max_offset)`` in field units (the
    # box is [-1, 1]^3): a cell that still drifts cannot fling matter from across the scene into
    # the occupancy grid. 0: unbounded.
    max_offset: float = 1.0


@register_field("deform", DeformConfig)
class DeformField(Field):
    """``(x [N, D], t [N, 1])`` -> warp into canonical space -> ``canonical`` field."""

    time_dependent = True

    def __init__(self, cfg: DeformConfig, in_dim: int = 3, view_dependent: bool = True, out_dim: int = 3, **context):
        super().__init__()
        context.pop("time_dependent", None)
        if cfg.canonical in FIELDS and FIELDS[cfg.canonical].cls.time_dependent:
            raise NeuralFieldsError(f"field 'deform' option canonical: '{cfg.canonical}' is time-dependent; "
                                    "choose a static field (ngp, triplane, nerf, cam, ...)")
        if not cfg.resolutions or min(cfg.resolutions) < 2 or cfg.time_resolution < 2:
            raise NeuralFieldsError(f"field 'deform': resolutions and time_resolution must be >= 2, "
                                    f"got {cfg.resolutions} and {cfg.time_resolution}")
        self.cfg, self.in_dim = cfg, in_dim
        self.canonical = build_field(cfg.canonical, cfg.canonical_options, in_dim=in_dim, view_dependent=view_dependent,
                                     out_dim=out_dim, time_dependent=False, **context)
        self.geo_dim = self.canonical.geo_dim
        self.encoding = PlaneEncoding(in_dim + 1, cfg.n_features, tuple(cfg.resolutions), time_dims=(in_dim,),
                                      time_resolution=cfg.time_resolution, init_range=tuple(cfg.init_range))
        self.decoder = ModulatedMLP(self.encoding.out_dim, cfg.hidden, cfg.layers, in_dim, zero_init_output=True)
        self.modulation = None
        if cfg.time_modulation:
            self.modulation = TimeModulation(self.decoder.n_sites, cfg.hidden, cfg.time_modulation_resolution,
                                             cfg.time_modulation_norm)
        self._warped: tuple | None = None  # (x, t, x_canonical) of the last density query, reused by color

    def deformation(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        """Offsets ``[N, D]`` from points ``x [N, D]`` at times ``t [N, 1]`` to canonical space."""
        t = time_or_zero(x, t)
        modulate = None if self.modulation is None else self.modulation.modulator(t)
        raw = self.decoder(self.encoding(with_time(x, t)), modulate)
        bound = self.cfg.max_offset
        return raw if bound <= 0 else bound * torch.tanh(raw / bound)

    def warp(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        """Canonical positions ``[N, D]`` of ``x`` at time ``t``."""
        return x + self.deformation(x, t)

    def raw_density(self, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        xc = self.warp(x, t)
        self._warped = (x, t, xc)
        return self.canonical.raw_density(xc)

    def density_activation(self, raw: Tensor) -> Tensor:
        return self.canonical.density_activation(raw)

    def color(self, x: Tensor, d: Tensor | None, geo: Tensor, t: Tensor | None = None) -> Tensor:
        # The renderer asks for colour at the points it just queried: reuse that warp.
        cached, self._warped = self._warped, None
        xc = cached[2] if cached is not None and cached[0] is x and cached[1] is t else self.warp(x, t)
        return self.canonical.color(xc, d, geo)

    def regularization(self) -> Tensor | None:
        c = self.cfg
        terms = [self.encoding.regularization(tv=c.tv_weight, time_smoothness=c.time_smoothness_weight,
                                              time_l1=c.time_l1_weight), self.canonical.regularization()]
        terms = [r for r in terms if r is not None]
        return sum(terms[1:], terms[0]) if terms else None

    @property
    def recommended_lr(self) -> float:
        """The canonical field's rate (an MLP canonical such as ``nerf`` needs far less than 1e-2)."""
        return self.canonical.recommended_lr

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        grids: list[nn.Parameter] = list(self.encoding.parameters())
        if self.modulation is not None:
            grids += list(self.modulation.parameters())
        return [
            *self.canonical.param_groups(lr, weight_decay),
            {"params": grids, "lr": lr * self.cfg.plane_lr_scale, "weight_decay": 0.0},
            {"params": list(self.decoder.parameters()), "lr": lr, "weight_decay": weight_decay},
        ]
