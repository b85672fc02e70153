"""Coordinate-Aware Modulation (CAM; Lee et al., ICLR 2024) of an MLP's hidden layers.

After each hidden linear layer and before its activation, the pre-activation ``u`` of a point
``x`` is normalised and modulated by a scale and a shift read from grids over the coordinates:

    u <- gamma_l(x) * norm(u) + beta_l(x)

``gamma`` starts at 1 and ``beta`` at 0, so an untrained modulation leaves the (normalised)
network unchanged. As in the paper, every layer ``l`` gets one scalar ``gamma`` and one scalar
``beta`` per point (shared by all channels), stored as one grid channel per layer:

- 2D inputs (images): a dense ``R x R`` grid (the paper uses 32 x 32);
- 3D inputs (radiance fields): a tri-plane (:class:`~neuralfields.encodings.PlaneEncoding`).
  ``gamma`` multiplies its three planes (each initialised to 1) and ``beta`` sums them (each
  initialised to 0): a product of zero-initialised planes would have zero gradient.

The paper found feature normalisation, which on its own does not help coordinate networks,
useful together with CAM: ``norm = "layer"`` normalises each point's pre-activation vector to
zero mean and unit variance over channels (for complex features, unit mean squared modulus).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ..encodings import PlaneEncoding
from ..errors import NeuralFieldsError
from ..registry import Registry
from .base import lookup


def layer_norm(u: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-row zero mean, unit (mean squared modulus) variance over the last axis; no affine."""
    centred = u - u.mean(dim=-1, keepdim=True)
    var = (centred.real.square() + centred.imag.square()).mean(-1, keepdim=True) if u.is_complex() \
        else centred.square().mean(-1, keepdim=True)
    return centred * torch.rsqrt(var + eps)


def no_norm(u: Tensor) -> Tensor:
    return u


# Normalisations applied to pre-activations before modulating them (CAM's and the time grid's).
NORMS: Registry[Callable[[Tensor], Tensor]] = Registry("norm")
NORMS.register("layer", layer_norm)
NORMS.register("none", no_norm)


@dataclass
class CAMOptions:
    resolution_2d: int = 32  # dense grid for 2D inputs (the paper's image setting)
    resolution_3d: int = 64  # tri-plane resolution for 3D inputs (CPU-sized; the paper uses 512)
    norm: str = "layer"  # layer | none
    lr_scale: float = 10.0  # grid learning rate relative to the MLP's (the paper's 10x)


class CoordinateModulation(nn.Module):
    """Scale and shift grids for ``n_sites`` hidden layers over points in ``[-1, 1]^in_dim``."""

    def __init__(self, in_dim: int, n_sites: int, options: CAMOptions):
        super().__init__()
        lookup(NORMS, options.norm, "CAM option norm")
        if in_dim not in (2, 3):
            raise NeuralFieldsError(f"CAM supports 2D and 3D inputs, got {in_dim}D")
        res = options.resolution_2d if in_dim == 2 else options.resolution_3d
        self.norm_name, self.n_sites = options.norm, n_sites
        self.gamma = PlaneEncoding(in_dim, n_sites, (res,), reduce="product", init_range=(1.0, 1.0))
        self.beta = PlaneEncoding(in_dim, n_sites, (res,), reduce="sum", init_range=(0.0, 0.0))

    def extra_repr(self) -> str:
        return f"sites={self.n_sites}, norm={self.norm_name}"

    def modulator(self, x: Tensor) -> Callable[[int, Tensor], Tensor]:
        """The ``modulate(layer, u)`` callback for points ``x [N, D]`` (grids sampled once)."""
        gamma, beta = self.gamma(x), self.beta(x)  # [N, n_sites] each
        norm = NORMS[self.norm_name]

        def modulate(layer: int, u: Tensor) -> Tensor:
            return gamma[:, layer : layer + 1] * norm(u) + beta[:, layer : layer + 1]

        return modulate
