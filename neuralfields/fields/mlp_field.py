"""One MLP-based field assembled from registries: input encoding -> backbone [-> CAM] -> heads.

    x [N, D] --encoding--> h --backbone (hidden layers, optional CAM)--> geo [N, F]
    raw density = Linear(geo)                                   (raw_density)
    colour      = MLP([dir_encoding(d), geo])  if view dependent (color)
                = Linear(geo)                  otherwise (2D image fitting)
    both through ``color_activation``

``nerf``, ``siren``, ``wire``, ``wire-complex`` and ``cam`` are registered names whose configs
are subclasses of :class:`MLPFieldConfig` with different defaults; ``mlp`` is the bare assembly
(defaults: raw coordinates into a ReLU MLP, the no-encoding baseline). Any combination is a
configuration, e.g. a hash grid with a SIREN decoder: ``--field mlp --set
field.options.encoding=hashgrid --set field.options.backbone=siren``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from ..config import from_dict
from ..registry import Registry
from .backbones import build_backbone
from ..layers import mlp
from .base import Field, lookup, register_field
from .coordinate_modulation import CAMOptions, CoordinateModulation
from .input_encodings import build_encoding


def identity(x: Tensor) -> Tensor:
    return x


COLOR_ACTIVATIONS: Registry[Callable[[Tensor], Tensor]] = Registry("color activation")
COLOR_ACTIVATIONS.register("sigmoid", torch.sigmoid)
COLOR_ACTIVATIONS.register("identity", identity)


@dataclass
class MLPFieldConfig:
    encoding: str = "none"  # none | frequency | hashgrid | planes (see fields.input_encodings.ENCODINGS)
    encoding_options: dict = field(default_factory=dict)
    backbone: str = "relu"  # relu | siren | wire | wire-complex (see fields.backbones.BACKBONES)
    backbone_options: dict = field(default_factory=dict)
    hidden: int = 256  # width of the backbone's hidden layers
    layers: int = 4  # hidden layers of the backbone
    skips: list[int] = field(default_factory=list)  # layers that also receive the encoded input
    dir_encoding: str = "sh"  # view-direction encoding of the colour head (3D fields only)
    dir_encoding_options: dict = field(default_factory=dict)
    color_hidden: int = 64  # colour head width (view-dependent fields)
    color_layers: int = 1  # colour head hidden layers (view-dependent fields)
    color_activation: str = "sigmoid"  # sigmoid | identity
    cam: bool = False  # Coordinate-Aware Modulation of every hidden layer
    cam_options: dict = field(default_factory=dict)  # see fields.coordinate_modulation.CAMOptions
    encoding_lr_scale: float = 1.0  # learning rate of grid encodings relative to the MLP's
    lr: float = 1e-3  # recommended Adam learning rate (used by `neuralfields fit`; presets set train.lr)


@register_field("mlp", MLPFieldConfig)
class MLPField(Field):
    """Encoding -> backbone -> density/colour heads; see the module docstring."""

    def __init__(self, cfg: MLPFieldConfig, in_dim: int = 3, view_dependent: bool = True, out_dim: int = 3, **_):
        super().__init__()
        self._color_act = lookup(COLOR_ACTIVATIONS, cfg.color_activation, "field option color_activation")
        self.cfg, self.in_dim = cfg, in_dim
        self.encoding = build_encoding(cfg.encoding, cfg.encoding_options, in_dim)
        self.backbone = build_backbone(cfg.backbone, cfg.backbone_options, self.encoding.out_dim,
                                       cfg.hidden, cfg.layers, cfg.skips)
        self.modulation = None
        if cfg.cam:
            opts = from_dict(CAMOptions, dict(cfg.cam_options), "field option cam_options")
            self.modulation = CoordinateModulation(in_dim, self.backbone.n_sites, opts)
        self.geo_dim = self.backbone.out_dim
        self.density_head = nn.Linear(self.geo_dim, 1)
        if view_dependent:
            self.dir_encoding = build_encoding(cfg.dir_encoding, cfg.dir_encoding_options, 3, "dir_encoding")
            self.color_head = mlp(self.dir_encoding.out_dim + self.geo_dim, cfg.color_hidden, cfg.color_layers, out_dim)
        else:
            self.dir_encoding = None
            self.color_head = nn.Linear(self.geo_dim, out_dim)

    def features(self, x: Tensor) -> Tensor:
        """Per-point geometry features ``[N, geo_dim]`` for points ``x [N, in_dim]`` in ``[-1, 1]``."""
        modulate = None if self.modulation is None else self.modulation.modulator(x)
        return self.backbone(self.encoding(x), modulate)

    def raw_density(self, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        geo = self.features(x)
        return self.density_head(geo)[:, 0], geo

    def color(self, x: Tensor, d: Tensor | None, geo: Tensor, t: Tensor | None = None) -> Tensor:
        inputs = geo if self.dir_encoding is None else torch.cat([self.dir_encoding(d), geo], dim=-1)
        return self._color_act(self.color_head(inputs))

    def init_from_signal(self, points: Tensor, importance: Tensor) -> None:
        """Data-dependent initialisation (2D fitting): points ``[N, D]`` with weights ``[N]``."""
        self.backbone.init_from_signal(points, importance)

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Grid encodings and CAM grids get their own rates and no weight decay."""
        groups = []
        grid_params: set[int] = set()
        if getattr(self.encoding, "is_grid", False):
            params = list(self.encoding.parameters())
            groups.append({"params": params, "lr": lr * self.cfg.encoding_lr_scale, "weight_decay": 0.0})
            grid_params |= {id(p) for p in params}
        if self.modulation is not None:
            params = list(self.modulation.parameters())
            scale = from_dict(CAMOptions, dict(self.cfg.cam_options), "field option cam_options").lr_scale
            groups.append({"params": params, "lr": lr * scale, "weight_decay": 0.0})
            grid_params |= {id(p) for p in params}
        rest = [p for p in self.parameters() if id(p) not in grid_params]
        return [*groups, {"params": rest, "lr": lr, "weight_decay": weight_decay}]
