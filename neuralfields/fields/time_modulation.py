"""Time-modulated MLPs: CAM's scale-and-shift modulation driven by a 1-D grid over time.

CAM (Lee et al.) modulates a canonical dynamic NeRF with a learnable 1-D grid over ``t``: after
each hidden linear layer and before its activation, the pre-activation ``u`` becomes

    u <- gamma_l(t) * norm(u) + beta_l(t)

with ``gamma`` initialised to 1 and ``beta`` to 0 (an untrained modulation changes nothing but
the optional normalisation). Here ``gamma`` and ``beta`` are per feature (FiLM-style), read by
linear interpolation from a ``[resolution, 2 * sites * width]`` grid. The ``modulate(layer, u)``
callback follows the protocol of :mod:`.backbones`, so the same modulation can drive those
backbones too; :mod:`.coordinate_modulation` supplies the normalisations.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from ..errors import NeuralFieldsError
from .coordinate_modulation import NORMS

Modulate = Callable[[int, Tensor], Tensor]


def interp_1d(grid: Tensor, t: Tensor) -> Tensor:
    """Linear interpolation of ``grid [R, C]`` (nodes spanning [0, 1]) at ``t [N, 1]`` -> ``[N, C]``."""
    pos = t.reshape(-1).clamp(0.0, 1.0) * (grid.shape[0] - 1)
    i0 = pos.floor().clamp(max=grid.shape[0] - 2).long()
    w = (pos - i0)[:, None]
    return grid[i0] * (1.0 - w) + grid[i0 + 1] * w


class TimeModulation(nn.Module):
    """Per-feature ``gamma, beta`` for ``n_sites`` hidden layers of width ``width`` from a 1-D time grid."""

    def __init__(self, n_sites: int, width: int, resolution: int = 32, norm: str = "layer"):
        super().__init__()
        if norm not in NORMS:
            raise NeuralFieldsError(f"time modulation norm: unknown '{norm}'; available: {', '.join(NORMS)}")
        if resolution < 2:
            raise NeuralFieldsError(f"time modulation resolution must be at least 2, got {resolution}")
        self.n_sites, self.width, self.norm_name = n_sites, width, norm
        init = torch.cat([torch.ones(n_sites * width), torch.zeros(n_sites * width)])
        self.grid = nn.Parameter(init.expand(resolution, -1).clone())  # [R, 2 * sites * width]

    def extra_repr(self) -> str:
        return f"sites={self.n_sites}, width={self.width}, resolution={self.grid.shape[0]}, norm={self.norm_name}"

    def modulator(self, t: Tensor) -> Modulate:
        """The ``modulate(layer, u)`` callback for times ``t [N, 1]`` in [0, 1] (grid read once)."""
        values = interp_1d(self.grid, t).reshape(-1, 2, self.n_sites, self.width)
        gamma, beta = values[:, 0], values[:, 1]  # [N, sites, width]
        norm = NORMS[self.norm_name]

        def modulate(layer: int, u: Tensor) -> Tensor:
            return gamma[:, layer] * norm(u) + beta[:, layer]

        return modulate


class ModulatedMLP(nn.Module):
    """``[N, in_dim] -> [N, out_dim]``: ``layers`` ReLU hidden layers whose pre-activations a
    ``modulate`` callback may rescale, then a linear output (optionally zero-initialised)."""

    def __init__(self, in_dim: int, hidden: int, layers: int, out_dim: int, zero_init_output: bool = False,
                 out_activation: nn.Module | None = None):
        super().__init__()
        self.hidden_layers = nn.ModuleList(nn.Linear(in_dim if i == 0 else hidden, hidden) for i in range(layers))
        self.output = nn.Linear(hidden if layers else in_dim, out_dim)
        self.out_activation = out_activation
        self.n_sites, self.width = layers, hidden
        if zero_init_output:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, h: Tensor, modulate: Modulate | None = None) -> Tensor:
        for i, linear in enumerate(self.hidden_layers):
            u = linear(h)
            h = torch.relu(u if modulate is None else modulate(i, u))
        out = self.output(h)
        return out if self.out_activation is None else self.out_activation(out)
