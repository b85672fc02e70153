"""Registry of input encodings for MLP-based fields: points in ``[-1, 1]^D`` -> features.

``encoding = "frequency"`` with ``encoding_options = {n_frequencies = 10}`` picks NeRF's positional
encoding; ``none`` feeds raw coordinates (SIREN, WIRE); ``hashgrid`` and ``planes`` give the mixed
fields (hash grid + SIREN decoder, tri-plane + ReLU decoder, ...). Each builder returns a module
with an ``out_dim`` attribute; modules that hold feature tables set ``is_grid = True`` so fields
can give them their own learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import Tensor, nn

from ..config import from_dict
from ..encodings import FrequencyEncoding, HashGrid, PlaneEncoding, SphericalHarmonics
from ..errors import NeuralFieldsError


@dataclass
class EncodingSpec:
    name: str
    build: Callable[[int, object], nn.Module]
    options_cls: type


ENCODINGS: dict[str, EncodingSpec] = {}


def register_encoding(name: str, options_cls: type):
    """Decorator registering ``build(in_dim, options) -> module`` under ``name``."""

    def wrap(build: Callable[[int, object], nn.Module]):
        ENCODINGS[name] = EncodingSpec(name, build, options_cls)
        return build

    return wrap


def build_encoding(name: str, options: dict | None, in_dim: int, where: str = "encoding") -> nn.Module:
    if name not in ENCODINGS:
        raise NeuralFieldsError(f"unknown {where} '{name}'; available: {', '.join(sorted(ENCODINGS))}")
    spec = ENCODINGS[name]
    return spec.build(in_dim, from_dict(spec.options_cls, dict(options or {}), f"{where} '{name}' options"))


class Identity(nn.Module):
    """Raw coordinates ``[N, D] -> [N, D]``."""

    is_grid = False

    def __init__(self, in_dim: int):
        super().__init__()
        self.out_dim = in_dim

    def forward(self, x: Tensor) -> Tensor:
        return x


class UnitCube(nn.Module):
    """Adapts an encoding over ``[0, 1]^D`` (the hash grid) to points in ``[-1, 1]^D``."""

    is_grid = True

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.out_dim = inner, inner.out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.inner((x + 1.0) * 0.5)


@dataclass
class NoOptions:
    pass


@register_encoding("none", NoOptions)
def _none(in_dim: int, opts: NoOptions) -> nn.Module:
    return Identity(in_dim)


@dataclass
class FrequencyOptions:
    n_frequencies: int = 10
    include_input: bool = True


@register_encoding("frequency", FrequencyOptions)
def _frequency(in_dim: int, opts: FrequencyOptions) -> nn.Module:
    enc = FrequencyEncoding(in_dim, opts.n_frequencies, opts.include_input)
    enc.is_grid = False
    return enc


@dataclass
class SHOptions:
    degree: int = 4


@register_encoding("sh", SHOptions)
def _sh(in_dim: int, opts: SHOptions) -> nn.Module:
    if in_dim != 3:
        raise NeuralFieldsError(f"encoding 'sh' encodes 3D directions, got {in_dim}D inputs")
    enc = SphericalHarmonics(opts.degree)
    enc.is_grid = False
    return enc


@dataclass
class HashGridOptions:
    n_levels: int = 16
    n_features: int = 2
    log2_table: int = 16
    base_res: int = 16
    max_res: int = 1024


@register_encoding("hashgrid", HashGridOptions)
def _hashgrid(in_dim: int, opts: HashGridOptions) -> nn.Module:
    return UnitCube(HashGrid(in_dim, opts.n_levels, opts.n_features, opts.log2_table, opts.base_res, opts.max_res))


@dataclass
class PlanesOptions:
    n_features: int = 16
    resolutions: list[int] = field(default_factory=lambda: [64, 128])
    reduce: str = "product"  # product (K-Planes) | sum (EG3D tri-planes)


@register_encoding("planes", PlanesOptions)
def _planes(in_dim: int, opts: PlanesOptions) -> nn.Module:
    try:
        enc = PlaneEncoding(in_dim, opts.n_features, tuple(opts.resolutions), reduce=opts.reduce)
    except ValueError as exc:
        raise NeuralFieldsError(f"encoding 'planes': {exc}") from None
    enc.is_grid = True
    return enc
