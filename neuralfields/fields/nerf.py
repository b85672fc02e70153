"""``nerf``: the original NeRF design (Mildenhall et al. 2020), the baseline of the field zoo.

Positional encoding (10 octaves for points, 4 for view directions) into a ReLU MLP of 8 layers
of 256 with the input re-injected before the fifth layer; density from the trunk features,
colour from the features and the encoded direction through one 128-wide layer. The paper trains
with Adam at 5e-4. All sizes are options, so CPU presets shrink the network (``scenes/demo-nerf.toml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import register_field
from .mlp_field import MLPField, MLPFieldConfig


@dataclass
class NeRFConfig(MLPFieldConfig):
    encoding: str = "frequency"
    encoding_options: dict = field(default_factory=lambda: {"n_frequencies": 10})
    backbone: str = "relu"
    hidden: int = 256
    layers: int = 8
    skips: list[int] = field(default_factory=lambda: [4])
    dir_encoding: str = "frequency"
    dir_encoding_options: dict = field(default_factory=lambda: {"n_frequencies": 4})
    color_hidden: int = 128
    color_layers: int = 1
    lr: float = 5e-4


@register_field("nerf", NeRFConfig)
class NeRFField(MLPField):
    """:class:`MLPField` with NeRF's defaults."""
