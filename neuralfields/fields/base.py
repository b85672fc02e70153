"""The ``Field`` protocol the renderer calls, the field registry, and shared building blocks.

A field maps points to density and colour and knows nothing about rays or cameras:

- ``raw_density(x, t) -> (raw [N], geo [N, geo_dim])``: pre-activation density and the
  per-sample geometry features (what the colour head reads; distillation matches them);
- ``density(x, t) -> (sigma [N], geo)``: ``sigma = density_activation(raw)``;
- ``color(x, d, geo, t) -> rgb [N, out_dim]``: ``d`` is ``[N, 3]`` unit view directions, or
  None for fields built with ``view_dependent=False`` (2D image fitting). A field with
  ``appearance_dim > 0`` also takes ``appearance [N, appearance_dim]``, a per-image code
  (:mod:`.appearance`) that it knows only as a vector.

Points arrive normalised: the scene box maps to ``[-1, 1]^in_dim``; times lie in ``[0, 1]``.
Encodings read both as they are, so fields pass them on without remapping. Tensors made while
computing live on the inputs' device; constants are registered buffers (``field.to`` moves them).

Fields register themselves by name with a typed config dataclass in :data:`FIELDS`;
:func:`build_field` builds one from ``FieldConfig(name, options)``. Encodings and backbones use
the same kind of registry entry (:class:`Configurable`), and every MLP is built by
:func:`~neuralfields.layers.linear_stack`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Collection, Iterable, Sequence, TypeVar

import torch
from torch import Tensor, nn

from ..config import from_dict
from ..errors import NeuralFieldsError
from ..layers import linear_stack, trunc_exp
from ..registry import Registry

T = TypeVar("T")


class Field(nn.Module):
    """Base class of every field. Subclasses set ``geo_dim`` and implement the two queries."""

    geo_dim: int = 0
    in_dim: int = 3
    time_dependent: bool = False
    appearance_dim: int = 0  # size of the per-image appearance code the colour head reads (0: none)

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

    def init_from_signal(self, points: Tensor, importance: Tensor) -> None:
        """Data-dependent initialisation from a signal's sample ``points [N, D]`` weighted by
        ``importance [N]`` (fitting calls it once before training; most fields need none)."""

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimiser groups; fields override to give encodings and MLPs different rates."""
        return [{"params": list(self.parameters()), "lr": lr, "weight_decay": weight_decay}]


@dataclass(frozen=True)
class Configurable:
    """A registry entry: something built by name (a field class, a backbone class, an encoding
    builder) and the dataclass of its options."""

    name: str
    build: Callable
    options_cls: type

    @property
    def cls(self) -> Callable:
        """The registered class (fields and backbones register classes)."""
        return self.build

    @property
    def config_cls(self) -> type:
        return self.options_cls

    def options(self, values: dict | None, kind: str):
        """``options_cls`` filled from ``values``; unknown keys fail naming ``kind`` and the entry."""
        return from_dict(self.options_cls, dict(values or {}), f"{kind} '{self.name}' options")


def register_configurable(registry: Registry[Configurable], name: str, options_cls: type) -> Callable:
    """Decorator registering its target in ``registry`` as ``name`` with options ``options_cls``."""
    return registry.register(name, wrap=lambda key, target: Configurable(key, target, options_cls))


def lookup(registry: Registry[T], name: str, where: str | None = None) -> T:
    """``registry[name]``; its one-line error is prefixed with ``where`` (the option it came from)."""
    try:
        return registry[name]
    except NeuralFieldsError as exc:
        if where is None:
            raise
        raise NeuralFieldsError(f"{where}: {exc}") from None


FIELDS: Registry[Configurable] = Registry("field")


def register_field(name: str, config_cls: type) -> Callable[[type], type]:
    """Class decorator: make a field available as ``--field name`` with options ``config_cls``."""
    store = register_configurable(FIELDS, name, config_cls)

    def wrap(cls: type) -> type:
        cls.field_name = name
        return store(cls)

    return wrap


def field_config(name: str, options: dict | None = None):
    """The typed config of field ``name`` with ``options`` applied (unknown keys are rejected)."""
    return FIELDS[name].options(options, "field")


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


# ------------------------------------------------------------------------------------- MLPs
# Every MLP in the fields is built from ``linear_stack`` and run by ``run_stack`` (or wrapped in an
# ``nn.Sequential`` by ``mlp``); the containers differ only to keep checkpoints' parameter names.

Modulate = Callable[[int, Tensor], Tensor]
"""``modulate(layer, u) -> u``: rescales and shifts hidden layer ``layer``'s pre-activation ``u [N, width]``."""


def run_stack(linears: Iterable[nn.Linear], h: Tensor,
              activation: Callable[[Tensor], Tensor] | Sequence[Callable[[Tensor], Tensor]],
              scales: Sequence[float] | None = None, skips: Collection[int] = (), modulate: Modulate | None = None,
              first_site: int = 0, record: list | None = None) -> Tensor:
    """``h [N, in_dim] -> [N, hidden]``: per layer ``u = scale * linear(x)``, ``modulate(first_site + i, u)``,
    ``activation(u)`` (one for all layers, or one per layer); layers in ``skips`` (except the first) also
    read ``h``; ``record`` collects every ``u``."""
    activations = activation if isinstance(activation, Sequence) else None
    x = h
    for i, linear in enumerate(linears):
        if i in skips and i > 0:
            x = torch.cat([x, h], dim=-1)
        scale = 1.0 if scales is None else scales[i]
        u = linear(x) if scale == 1.0 else scale * linear(x)
        if modulate is not None:
            u = modulate(first_site + i, u)
        if record is not None:
            record.append(u)
        x = activation(u) if activations is None else activations[i](u)
    return x


class ModulatedMLP(nn.Module):
    """``[N, in_dim] -> [N, out_dim]``: ``layers`` ReLU hidden layers whose pre-activations a
    ``modulate`` callback may rescale, then a linear output (optionally zero-initialised)."""

    def __init__(self, in_dim: int, hidden: int, layers: int, out_dim: int, zero_init_output: bool = False,
                 out_activation: nn.Module | None = None):
        super().__init__()
        self.hidden_layers = linear_stack(in_dim, hidden, layers)
        self.output = nn.Linear(hidden if layers else in_dim, out_dim)
        self.out_activation = out_activation
        self.n_sites, self.width = layers, hidden
        if zero_init_output:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, h: Tensor, modulate: Modulate | None = None) -> Tensor:
        out = self.output(run_stack(self.hidden_layers, h, torch.relu, modulate=modulate))
        return out if self.out_activation is None else self.out_activation(out)
