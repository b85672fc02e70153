"""NeRF's positional encoding: sin/cos at octave-spaced frequencies."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class FrequencyEncoding(nn.Module):
    """``x [N, D] -> [N, D * (include_input + 2 * n_frequencies)]``.

    Frequencies are ``pi * 2^k`` for ``k < n_frequencies`` so inputs in [-1, 1] span whole periods.
    """

    def __init__(self, in_dim: int, n_frequencies: int = 10, include_input: bool = True):
        super().__init__()
        self.in_dim, self.include_input = in_dim, include_input
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(n_frequencies, dtype=torch.float32), persistent=False)
        self.out_dim = in_dim * (int(include_input) + 2 * n_frequencies)

    def forward(self, x: Tensor) -> Tensor:
        scaled = (x[..., None] * self.freqs).flatten(-2)  # [N, D * F]
        parts = [torch.sin(scaled), torch.cos(scaled)]
        if self.include_input:
            parts.insert(0, x)
        return torch.cat(parts, dim=-1)
