"""SIREN (Sitzmann et al. 2020): sine activations with the paper's initialisation.

Each hidden layer computes ``sin(u)`` with pre-activation ``u = omega * (W x + b)``:

- first layer: ``W, b ~ U(-1/n, 1/n)`` for fan-in ``n`` and ``omega = first_omega`` (30), so
  the first layer spans several periods over ``[-1, 1]``;
- later layers: ``W, b ~ U(-sqrt(6/n)/omega, sqrt(6/n)/omega)`` with ``omega = hidden_omega``.
  With arcsine-distributed inputs (variance 1/2) this makes ``u`` approximately standard normal
  in every layer, and ``sin(u)`` arcsine-distributed again, whatever the depth (the paper's
  Theorem 1; ``tests/fields/test_fields.py`` checks it). The official code leaves biases at PyTorch's
  default, which adds variance the analysis ignores; we draw them like the weights.

Keeping ``omega`` outside the weights (instead of folding it in) scales the gradients the way the
paper intends. The paper fits images with Adam at 1e-4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .backbones import LayeredBackbone, register_backbone
from .base import Modulate, register_field
from .mlp_field import MLPField, MLPFieldConfig


@dataclass
class SirenOptions:
    first_omega: float = 30.0
    hidden_omega: float = 30.0


def siren_uniform_(linear: nn.Linear, bound: float) -> nn.Linear:
    """Weights and biases of ``linear`` drawn from ``U(-bound, bound)``."""
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)
        linear.bias.uniform_(-bound, bound)
    return linear


@register_backbone("siren", SirenOptions)
class SirenBackbone(LayeredBackbone):
    """Stack of sine layers ``sin(omega * (W x + b))``."""

    def __init__(self, in_dim: int, hidden: int, layers: int, skips: list[int], options: SirenOptions):
        scales = [options.first_omega] + [options.hidden_omega] * (layers - 1)

        def init(i: int, linear: nn.Linear) -> None:
            fan_in = linear.in_features
            siren_uniform_(linear, 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / scales[i])

        super().__init__(in_dim, hidden, layers, skips, init=init)
        self.scales = scales

    def activation(self, u: Tensor) -> Tensor:
        return torch.sin(u)

    def preactivations(self, h: Tensor, modulate: Modulate | None = None) -> list[Tensor]:
        """Every layer's ``u [N, hidden]`` (for the initialisation statistics test)."""
        out = []
        self.forward(h, modulate, out)
        return out


@dataclass
class SirenFieldConfig(MLPFieldConfig):
    backbone: str = "siren"
    hidden: int = 256
    layers: int = 4
    lr: float = 1e-4


@register_field("siren", SirenFieldConfig)
class SirenField(MLPField):
    """:class:`MLPField` with a SIREN backbone on raw coordinates."""
