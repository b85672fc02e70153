"""Instant-NGP radiance field: hash-grid encoding, tiny density MLP, colour MLP on SH directions."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..encodings import SphericalHarmonics
from ..layers import mlp
from .base import Field, register_field
from .input_encodings import HashGridOptions, hash_grid


@dataclass
class NGPConfig(HashGridOptions):
    log2_table: int = 19
    max_res: int = 2048  # multiplied by aabb_scale so detail per unit length stays the same
    geo_dim: int = 15  # geometry features passed to the colour head
    hidden: int = 64
    color_layers: int = 2
    sh_degree: int = 4
    encoding_lr_scale: float = 1.0  # encoding learning rate relative to the MLPs'
    appearance_dim: int = 0  # >0: the colour head also reads a per-image appearance code of this size


@register_field("ngp", NGPConfig)
class NGPField(Field):
    """Hash grid -> MLP(64) -> (raw density, geo features); (SH(d), geo) -> MLP -> sigmoid RGB."""

    def __init__(self, cfg: NGPConfig, in_dim: int = 3, view_dependent: bool = True, out_dim: int = 3,
                 aabb_scale: float = 1.0, **_):
        super().__init__()
        self.cfg, self.in_dim, self.geo_dim, self.appearance_dim = cfg, in_dim, cfg.geo_dim, cfg.appearance_dim
        self.encoding = hash_grid(in_dim, cfg, aabb_scale)
        self.density_net = mlp(self.encoding.out_dim, cfg.hidden, 1, 1 + cfg.geo_dim)
        self.dir_encoding = SphericalHarmonics(cfg.sh_degree) if view_dependent else None
        dir_dim = self.dir_encoding.out_dim if view_dependent else 0
        self.color_net = mlp(dir_dim + cfg.geo_dim + cfg.appearance_dim, cfg.hidden, cfg.color_layers, out_dim, out_activation=nn.Sigmoid())

    def raw_density(self, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.density_net(self.encoding(x))
        return h[:, 0], h[:, 1:]

    def color(self, x: Tensor, d: Tensor | None, geo: Tensor, t: Tensor | None = None,
              appearance: Tensor | None = None) -> Tensor:
        parts = [geo] if self.dir_encoding is None else [self.dir_encoding(d), geo]
        if self.appearance_dim:
            parts.append(appearance if appearance is not None else geo.new_zeros(geo.shape[0], self.appearance_dim))
        return self.color_net(torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0])

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        mlps = [p for n, p in self.named_parameters() if not n.startswith("encoding.")]
        return [
            {"params": list(self.encoding.parameters()), "lr": lr * self.cfg.encoding_lr_scale, "weight_decay": 0.0},
            {"params": mlps, "lr": lr, "weight_decay": weight_decay},
        ]
