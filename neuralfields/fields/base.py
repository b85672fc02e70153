"""The ``Field`` protocol the renderer calls, the field registry, and shared building blocks.

A field maps points to density and colour and knows nothing about rays or cameras:

- ``raw_density(x, t) -> (raw [N], geo [N, geo_dim])``: pre-activation density and the
  per-sample geometry features (what the colour head reads; distillation matches them);
- ``density(x, t) -> (sigma [N], geo)``: ``sigma = density_activation(raw)``;
- ``color(x, d, geo, t) -> rgb [N, out_dim]``: ``d`` is ``[N, 3]`` unit view directions, or
  None for fields built with ``view_dependent=False`` (2D image fitting).

Points arrive normalised: the scene box maps to ``[-1, 1]^in_dim``; times lie in ``[0, 1]``.
Fields register themselves by name with a typed config dataclass; :func:`build_field` builds
one from ``FieldConfig(name, options)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ..config import from_dict
from ..errors import NeuralFieldsError


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


class Field(nn.Module):
    """Base class of every field. Subclasses set ``geo_dim`` and implement the two queries."""

    geo_dim: int = 0
    in_dim: int = 3
    time_dependent: bool = False

    def raw_density(self, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def color(self, x: Tensor, d: Tensor | None, geo: Tensor, t: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    @property
    def recommended_lr(self) -> float:
        """Adam rate used unless the run config sets one: the field config's ``lr``, else 1e-2."""
        return float(getattr(getattr(self, "cfg", None), "lr", None) or 1e-2)

    def density_activation(self, raw: Tensor) -> Tensor:
        return trunc_exp(raw)

    def density(self, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raw, geo = self.raw_density(x, t)
        return self.density_activation(raw), geo

    def forward(self, x: Tensor, d: Tensor | None = None, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        sigma, geo = self.density(x, t)
        return sigma, self.color(x, d, geo, t)

    def regularization(self) -> Tensor | None:
        """Extra loss (e.g. total variation of planes) added by the trainer; None when unused."""
        return None

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimiser groups; fields override to give encodings and MLPs different rates."""
        return [{"params": list(self.parameters()), "lr": lr, "weight_decay": weight_decay}]


@dataclass
class FieldSpec:
    name: str
    cls: type
    config_cls: type


FIELDS: dict[str, FieldSpec] = {}


def register_field(name: str, config_cls: type) -> Callable[[type], type]:
    """Class decorator: make a field available as ``--field name`` with options ``config_cls``."""

    def wrap(cls: type) -> type:
        FIELDS[name] = FieldSpec(name, cls, config_cls)
        cls.field_name = name
        return cls

    return wrap


def field_config(name: str, options: dict | None = None):
    """The typed config of field ``name`` with ``options`` applied (unknown keys are rejected)."""
    if name not in FIELDS:
        raise NeuralFieldsError(f"unknown field '{name}'; available: {', '.join(sorted(FIELDS))}")
    return from_dict(FIELDS[name].config_cls, dict(options or {}), f"field '{name}' options")


def build_field(name: str, options: dict | None = None, in_dim: int = 3, view_dependent: bool = True,
                out_dim: int = 3, **context) -> Field:
    """Instantiate a registered field.

    ``context`` carries scene facts a field may use for its defaults (``aabb_scale``,
    ``time_dependent``); fields ignore what they do not need.
    """
    cfg = field_config(name, options)
    return FIELDS[name].cls(cfg, in_dim=in_dim, view_dependent=view_dependent, out_dim=out_dim, **context)


def resolved_options(name: str, options: dict | None = None) -> dict:
    """All options of a field with defaults filled in (written to the run's config)."""
    return dataclasses.asdict(field_config(name, options))


def mlp(in_dim: int, hidden: int, n_hidden_layers: int, out_dim: int, activation: type = nn.ReLU,
        out_activation: nn.Module | None = None) -> nn.Sequential:
    """A plain MLP: ``n_hidden_layers`` hidden layers of width ``hidden``."""
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(n_hidden_layers):
        layers += [nn.Linear(dim, hidden), activation()]
        dim = hidden
    layers.append(nn.Linear(dim, out_dim))
    if out_activation is not None:
        layers.append(out_activation)
    return nn.Sequential(*layers)
