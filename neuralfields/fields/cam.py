"""``cam``: Coordinate-Aware Modulation on top of any MLP-based field.

``base`` names the wrapped field (``nerf``, ``siren``, ``wire``, ``wire-complex``, ``mlp``, or any
field whose config is an :class:`~.mlp_field.MLPFieldConfig`); ``base_options`` are its options;
the remaining keys are CAM's (:class:`~.coordinate_modulation.CAMOptions`). The result is the base field
with ``cam = true``: same layers and state-dict keys plus the modulation grids, e.g.

    [field]
    name = "cam"
    [field.options]
    base = "siren"
    base_options = { hidden = 128 }
    norm = "none"

The equivalent ``--field siren --set field.options.cam=true`` works as well.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import NeuralFieldsError
from .base import field_config, register_field
from .mlp_field import MLPField, MLPFieldConfig
from .coordinate_modulation import CAMOptions


@dataclass
class CAMFieldConfig(CAMOptions):
    base: str = "nerf"  # the wrapped MLP-based field
    base_options: dict = field(default_factory=dict)
    lr: float | None = None  # recommended learning rate; None: the base field's


def base_config(cfg: CAMFieldConfig) -> MLPFieldConfig:
    """The wrapped field's config with CAM switched on and CAM's options filled in."""
    if cfg.base == "cam":
        raise NeuralFieldsError("field 'cam': base cannot be 'cam' itself")
    base = field_config(cfg.base, cfg.base_options)
    if not isinstance(base, MLPFieldConfig):
        raise NeuralFieldsError(f"field 'cam': base '{cfg.base}' is not an MLP-based field (choose nerf, siren, wire, wire-complex or mlp)")
    cam = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(CAMOptions)}
    lr = base.lr if cfg.lr is None else cfg.lr
    return dataclasses.replace(base, cam=True, cam_options={**base.cam_options, **cam}, lr=lr)


@register_field("cam", CAMFieldConfig)
class CAMField(MLPField):
    """The base field's :class:`MLPField` with Coordinate-Aware Modulation on every hidden layer."""

    def __init__(self, cfg: CAMFieldConfig, in_dim: int = 3, view_dependent: bool = True, out_dim: int = 3, **context):
        super().__init__(base_config(cfg), in_dim=in_dim, view_dependent=view_dependent, out_dim=out_dim, **context)
        self.cam_cfg = cfg
