"""CAM's time modulation: scale-and-shift of an MLP's hidden layers read from a 1-D grid over time.

CAM (Lee et al.) modulates a canonical dynamic NeRF with a learnable 1-D grid over ``t``: after
each hidden linear layer and before its activation, the pre-activation ``u`` becomes

    u <- gamma_l(t) * norm(u) + beta_l(t)

with ``gamma`` initialised to 1 and ``beta`` to 0 (an untrained modulation changes nothing but
the optional normalisation). Here ``gamma`` and ``beta`` are per feature (FiLM-style), read by
linear interpolation from a ``[resolution, 2 * sites * width]`` grid. The ``modulate(layer, u)``
callback follows the protocol of :mod:`.backbones` and :class:`~.base.ModulatedMLP` (the decoders
it drives); :mod:`.coordinate_modulation` supplies the normalisations.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import NeuralFieldsError
from .base import Modulate, lookup
from .coordinate_modulation import NORMS


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
        lookup(NORMS, norm, "time modulation norm")
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
