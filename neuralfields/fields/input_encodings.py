"""Registry of input encodings for MLP-based fields: points in ``[-1, 1]^D`` -> features.

``encoding = "frequency"`` with ``encoding_options = {n_frequencies = 10}`` picks NeRF's positional
encoding; ``none`` feeds raw coordinates (SIREN, WIRE); ``hashgrid`` and ``planes`` give the mixed
fields (hash grid + SIREN decoder, tri-plane + ReLU decoder, ...). Every encoding reads the
renderer's ``[-1, 1]^D`` points as they are (no remapping here). Each builder returns a module
with an ``out_dim`` attribute; modules that hold feature tables set ``is_grid = True`` so fields
can give them their own learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import Tensor, nn

from ..encodings import FrequencyEncoding, HashGrid, PlaneEncoding, SphericalHarmonics
from ..errors import NeuralFieldsError
from ..registry import Registry
from .base import Configurable, lookup, register_configurable

ENCODINGS: Registry[Configurable] = Registry("encoding")


def register_encoding(name: str, options_cls: type) -> Callable:
    """Decorator registering ``build(in_dim, options) -> module`` under ``name``."""
    return register_configurable(ENCODINGS, name, options_cls)


def build_encoding(name: str, options: dict | None, in_dim: int, where: str = "encoding") -> nn.Module:
    """The encoding ``name`` of ``in_dim``-D inputs; ``where`` names the option in errors (``dir_encoding``)."""
    spec = lookup(ENCODINGS, name, None if where == "encoding" else f"field option {where}")
    return spec.build(in_dim, spec.options(options, where))


class Identity(nn.Module):
    """Raw coordinates ``[N, D] -> [N, D]``."""

    is_grid = False

    def __init__(self, in_dim: int):
        super().__init__()
        self.out_dim = in_dim

    def forward(self, x: Tensor) -> Tensor:
        return x


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
    """Hash-grid options (also the first options of the ``ngp`` field)."""

    n_levels: int = 16
    n_features: int = 2
    log2_table: int = 16
    base_res: int = 16
    max_res: int = 1024
    backend: str = "auto"  # torch | triton (fused CUDA kernel) | auto: triton on CUDA when it imports


def hash_grid(in_dim: int, opts: HashGridOptions, res_scale: float = 1.0) -> HashGrid:
    """The hash grid of ``opts``; ``res_scale`` multiplies the finest resolution (``aabb_scale``)."""
    return HashGrid(in_dim, opts.n_levels, opts.n_features, opts.log2_table, opts.base_res,
                    int(opts.max_res * res_scale), backend=opts.backend)


def _unwrapped_hash_grid_keys(state_dict: dict, prefix: str, *_) -> None:
    """Checkpoints from before the hash grid took ``[-1, 1]`` wrapped it: ``inner.embeddings``."""
    old = prefix + "inner.embeddings"
    if old in state_dict:
        state_dict[prefix + "embeddings"] = state_dict.pop(old)


@register_encoding("hashgrid", HashGridOptions)
def _hashgrid(in_dim: int, opts: HashGridOptions) -> nn.Module:
    enc = hash_grid(in_dim, opts)
    enc.is_grid = True
    enc._register_load_state_dict_pre_hook(_unwrapped_hash_grid_keys)
    return enc


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
