"""``triplane``: multi-resolution axis-aligned feature planes and a small decoder (K-Planes, static).

A point's feature at each resolution is the Hadamard product of its bilinear samples on the
``(x,y), (x,z), (y,z)`` planes; resolutions are concatenated (``n_features * len(resolutions)``)
and decoded by a small MLP into ``(raw density, geo features)``; the colour head reads the geo
features with spherical harmonics of the view direction, as in :mod:`.ngp`. With ``in_dim=2``
there is a single plane per resolution (a multi-resolution 2D grid) for image fitting.

Planes train best with a higher learning rate than the decoder (``plane_lr_scale``), no weight
decay, and a total-variation penalty (``tv_weight``) that keeps unseen cells from becoming
floaters; ``l1_weight`` adds TensoRF-style feature sparsity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..encodings import PlaneEncoding, SphericalHarmonics
from ..errors import NeuralFieldsError
from ..layers import trunc_exp
from .base import Field, Modulate, ModulatedMLP, register_field


# Products of planes trained at high rates can push raw densities past exp's float32 range, and one
# infinite density turns the renderer's packed cumulative sums into NaN. A soft ceiling at
# sigma = e^15 (opaque at any step size) keeps gradients everywhere and values finite.
MAX_LOG_DENSITY = 15.0


def soft_ceiling(raw: Tensor, ceiling: float = MAX_LOG_DENSITY) -> Tensor:
    """``raw`` below ``ceiling`` is unchanged (to within ``softplus``); above, it saturates smoothly."""
    return ceiling - F.softplus(ceiling - raw)


@dataclass
class TriplaneConfig:
    n_features: int = 16  # channels per plane
    resolutions: list[int] = field(default_factory=lambda: [32, 64, 128])  # per level; times aabb_scale
    reduce: str = "product"  # product (K-Planes) | sum (EG3D)
    init_range: list[float] = field(default_factory=lambda: [0.1, 0.5])  # uniform init of the planes
    hidden: int = 64
    density_layers: int = 1  # hidden layers of the density decoder
    geo_dim: int = 15  # geometry features passed to the colour head
    color_layers: int = 2
    sh_degree: int = 4
    tv_weight: float = 1e-4  # total variation of the planes
    l1_weight: float = 0.0  # L1 sparsity of the plane features
    plane_lr_scale: float = 10.0  # plane learning rate relative to the decoders' (planes learn slowly at MLP rates)


def check_plane_options(name: str, cfg: TriplaneConfig) -> None:
    """Reject option values the plane encoding cannot use, naming the field and option."""
    if cfg.reduce not in ("product", "sum"):
        raise NeuralFieldsError(f"field '{name}' option reduce: expected 'product' or 'sum', got '{cfg.reduce}'")
    if not cfg.resolutions or min(cfg.resolutions) < 2:
        raise NeuralFieldsError(f"field '{name}' option resolutions: need at least one value >= 2, got {cfg.resolutions}")
    if len(cfg.init_range) != 2:
        raise NeuralFieldsError(f"field '{name}' option init_range: expected [low, high], got {cfg.init_range}")


@register_field("triplane", TriplaneConfig)
class TriplaneField(Field):
    """Planes -> MLP -> (raw density, geo [N, geo_dim]); (SH(d), geo) -> MLP -> sigmoid colour.

    Subclasses add a time axis (:mod:`.kplanes`) by overriding :meth:`plane_inputs` and passing
    ``time_dims``; a ``modulation`` (see :mod:`.time_modulation`) may rescale the decoders' hidden layers.
    """

    def __init__(self, cfg: TriplaneConfig, in_dim: int = 3, view_dependent: bool = True, out_dim: int = 3,
                 aabb_scale: float = 1.0, time_dims: tuple[int, ...] = (), time_resolution: int = 25, **_):
        super().__init__()
        name = getattr(self, "field_name", "triplane")
        if in_dim not in (2, 3):
            raise NeuralFieldsError(f"field '{name}': in_dim must be 2 or 3, got {in_dim}")
        check_plane_options(name, cfg)
        self.cfg, self.in_dim, self.geo_dim = cfg, in_dim, cfg.geo_dim
        resolutions = [max(2, int(r * aabb_scale)) for r in cfg.resolutions]
        self.encoding = PlaneEncoding(in_dim + len(time_dims), cfg.n_features, tuple(resolutions), time_dims=time_dims,
                                      time_resolution=time_resolution, reduce=cfg.reduce,
                                      init_range=tuple(cfg.init_range))
        self.density_net = ModulatedMLP(self.encoding.out_dim, cfg.hidden, cfg.density_layers, 1 + cfg.geo_dim)
        self.dir_encoding = SphericalHarmonics(cfg.sh_degree) if view_dependent else None
        dir_dim = self.dir_encoding.out_dim if view_dependent else 0
        self.color_net = ModulatedMLP(dir_dim + cfg.geo_dim, cfg.hidden, cfg.color_layers, out_dim,
                                      out_activation=nn.Sigmoid())

    # Hooks for time-dependent subclasses.
    def plane_inputs(self, x: Tensor, t: Tensor | None) -> Tensor:
        """Encoding input ``[N, D]``: points ``x [N, in_dim]`` in ``[-1, 1]`` (and times ``t [N, 1]`` in ``[0, 1]``)."""
        return x

    def modulators(self, t: Tensor | None) -> tuple[Modulate | None, Modulate | None]:
        """Callbacks modulating the density and colour decoders' hidden layers (none here)."""
        return None, None

    def raw_density(self, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.density_net(self.encoding(self.plane_inputs(x, t)), self.modulators(t)[0])
        return h[:, 0], h[:, 1:]

    def color(self, x: Tensor, d: Tensor | None, geo: Tensor, t: Tensor | None = None) -> Tensor:
        inputs = geo if self.dir_encoding is None else torch.cat([self.dir_encoding(d), geo], dim=-1)
        return self.color_net(inputs, self.modulators(t)[1])

    def density_activation(self, raw: Tensor) -> Tensor:
        return trunc_exp(soft_ceiling(raw))

    def regularization(self) -> Tensor | None:
        return self.encoding.regularization(tv=self.cfg.tv_weight, l1=self.cfg.l1_weight)

    def grid_parameters(self) -> list[nn.Parameter]:
        """Parameters of the explicit grids (planes), trained at ``plane_lr_scale`` without weight decay."""
        return list(self.encoding.parameters())

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        grids = {id(p) for p in self.grid_parameters()}
        return [
            {"params": self.grid_parameters(), "lr": lr * self.cfg.plane_lr_scale, "weight_decay": 0.0},
            {"params": [p for p in self.parameters() if id(p) not in grids], "lr": lr, "weight_decay": weight_decay},
        ]
