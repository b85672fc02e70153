"""Coordinate-network backbones: stacks of ``linear -> [modulation] -> activation`` layers.

A backbone maps encoded points ``h [N, in_dim]`` to features ``[N, out_dim]`` (the field's
geometry features). Backbones register by name with a typed options dataclass, so a field picks
one by configuration (``backbone = "siren"``) instead of subclassing.

Every hidden layer computes a *pre-activation* ``u`` and then ``activation(u)``; between the two
a ``modulate(layer, u)`` callback may rescale and shift ``u`` (Coordinate-Aware Modulation, see
:mod:`.cam`). Backbones express ``u`` in the units their activation expects at unit scale (a
SIREN's ``u`` is ``omega * (W x + b)``), so a normalisation placed there means the same for all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ..errors import NeuralFieldsError
from ..registry import Registry
from ..layers import linear_stack
from .base import Configurable, Modulate, register_configurable, run_stack


class Backbone(nn.Module):
    """Base class. Subclasses build their layers and set ``out_dim`` and ``n_sites``.

    Args:
        in_dim: width of the encoded input.
        hidden: width of hidden layers.
        layers: number of hidden layers.
        skips: hidden-layer indices that also receive the encoded input (NeRF's skip connection).
        options: the backbone's options dataclass.
    """

    out_dim: int
    n_sites: int  # modulation sites (hidden layers) a modulation must provide for

    def forward(self, h: Tensor, modulate: Modulate | None = None) -> Tensor:
        raise NotImplementedError

    def init_from_signal(self, points: Tensor, importance: Tensor) -> None:
        """Data-dependent initialisation from sample points ``[N, D]`` and their weights ``[N]``.

        Only backbones whose paper prescribes one override this (see ``wire-complex``).
        """


BACKBONES: Registry[Configurable] = Registry("backbone")


def register_backbone(name: str, options_cls: type) -> Callable[[type], type]:
    """Class decorator: make a backbone available as ``backbone = name``."""
    return register_configurable(BACKBONES, name, options_cls)


def build_backbone(name: str, options: dict | None, in_dim: int, hidden: int, layers: int,
                   skips: list[int]) -> Backbone:
    spec = BACKBONES[name]
    opts = spec.options(options, "backbone")
    if layers < 1:
        raise NeuralFieldsError(f"backbone '{name}': layers must be at least 1, got {layers}")
    return spec.cls(in_dim, hidden, layers, list(skips), opts)


@dataclass
class ReLUOptions:
    pass


class LayeredBackbone(Backbone):
    """``u = scale_i * (W_i x + b_i)``, optional ``modulate(i, u)``, then ``activation(u)``, per layer.

    Subclasses give the activation and, where their paper prescribes them, per-layer scales and
    initialisations (``init(i, linear)`` re-draws layer ``i``; see :func:`~.base.linear_stack`).
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, skips: list[int], scale: float = 1.0,
                 init: Callable[[int, nn.Linear], None] | None = None):
        super().__init__()
        self.skips = set(skips)
        self.linears = linear_stack(in_dim, hidden, layers, skips, init)
        self.scales = [scale] * layers
        self.out_dim, self.n_sites = hidden, layers

    def activation(self, u: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, h: Tensor, modulate: Modulate | None = None, record: list | None = None) -> Tensor:
        """``h [N, in_dim]`` -> ``[N, hidden]``; ``record`` collects every layer's ``u``."""
        return run_stack(self.linears, h, self.activation, self.scales, self.skips, modulate, record=record)


@register_backbone("relu", ReLUOptions)
class ReLUBackbone(LayeredBackbone):
    """The classic coordinate MLP: ``relu(W x + b)`` layers (PyTorch's default initialisation)."""

    def __init__(self, in_dim: int, hidden: int, layers: int, skips: list[int], options: ReLUOptions):
        super().__init__(in_dim, hidden, layers, skips)

    def activation(self, u: Tensor) -> Tensor:
        return torch.relu(u)
