"""Network building blocks below fields and samplers: MLP stacks and the truncated exponential.

Fields (:mod:`neuralfields.fields`) and the proposal sampler's small density networks build
from these, so a sampler needs no field to build its networks.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor, nn


class _TruncExp(torch.autograd.Function):
    """``exp`` whose backward clamps its argument: large raw densities cannot blow up gradients."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(-15, 15))


def trunc_exp(x: Tensor) -> Tensor:
    return _TruncExp.apply(x)


def layer_inputs(in_dim: int, hidden: int, layers: int, skips: Iterable[int] = ()) -> list[int]:
    """Input width of each hidden layer: the encoded input is concatenated before skip layers."""
    skips = set(skips)
    return [in_dim if i == 0 else hidden + (in_dim if i in skips else 0) for i in range(layers)]


def linear_stack(in_dim: int, hidden: int, layers: int, skips: Iterable[int] = (),
                 init: Callable[[int, nn.Linear], None] | None = None) -> nn.ModuleList:
    """``layers`` linear maps to width ``hidden`` (input widths from :func:`layer_inputs`).

    All layers get PyTorch's default initialisation first; ``init(i, linear)`` then re-draws
    layer ``i`` (SIREN), in layer order, so the random stream does not depend on ``init``.
    """
    linears = nn.ModuleList(nn.Linear(d, hidden) for d in layer_inputs(in_dim, hidden, layers, skips))
    if init is not None:
        with torch.no_grad():
            for i, linear in enumerate(linears):
                init(i, linear)
    return linears


def mlp(in_dim: int, hidden: int, n_hidden_layers: int, out_dim: int, activation: type = nn.ReLU,
        out_activation: nn.Module | None = None) -> nn.Sequential:
    """A plain MLP ``[N, in_dim] -> [N, out_dim]``: ``n_hidden_layers`` hidden layers of width ``hidden``."""
    layers: list[nn.Module] = []
    for linear in linear_stack(in_dim, hidden, n_hidden_layers):
        layers += [linear, activation()]
    layers.append(nn.Linear(hidden if n_hidden_layers else in_dim, out_dim))
    if out_activation is not None:
        layers.append(out_activation)
    return nn.Sequential(*layers)
