"""Wavelet activations: WIRE (Saragadam et al., CVPR 2023) and its complex, split refinement.

``wire`` -- the real Gabor wavelet ``psi(z) = cos(omega0 z) exp(-(sigma0 z)^2)`` after every
linear layer (PyTorch's default initialisation, as the WIRE code). The backbone's pre-activation
is ``u = omega0 z``, so ``psi = cos(u) exp(-(sigma0/omega0 u)^2)``.

``wire-complex`` -- following Roddenberry et al., "Implicit Neural Representations and the
Algebra of Complex Wavelets" (ICLR 2024):

- *complex wavelets*: a band-pass path whose first layer applies the complex Gabor wavelet
  ``exp(i omega0 z) exp(-(sigma0 z)^2)`` to real affine maps of the coordinates; its later layers
  are complex linear maps followed by ``exp(i omega0 z - |sigma0 z|^2)`` (WIRE's layer), so
  products of atoms only ever shift frequencies upwards and stay where the first layer's atoms are;
- *split low-pass / band-pass*: Gabor wavelets have (nearly) zero mean, so smooth content is
  handled by a separate low-pass path whose layers apply a Gaussian (a scaling function)
  ``exp(-(s z)^2)``; the two paths' features are concatenated and read by the same linear heads
  (equivalent to summing two networks' outputs);
- *initialisation from the singularities*: a first-layer atom ``psi(w . x + b)`` lies along
  the line ``w . (x - c) = 0``; we set ``b = -w . c`` with centres ``c`` drawn uniformly in the
  domain, or, when the target signal is known (2D fitting calls :meth:`init_from_signal` with the
  image's gradient magnitude), drawn where the signal has edges.

Complex weights are stored as real ``[..., 2]`` parameters (``torch.view_as_complex`` in the
forward pass), so parameter counts and optimisers see real numbers; the band-pass width is the
real width divided by sqrt(2) (as WIRE does) to keep the parameter budget comparable.
WIRE's authors recommend learning rates of 5e-3 to 2e-2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from ..errors import NeuralFieldsError
from .backbones import Backbone, LayeredBackbone, register_backbone
from ..layers import layer_inputs, linear_stack
from .base import Modulate, register_field, run_stack
from .mlp_field import MLPField, MLPFieldConfig


@dataclass
class GaborOptions:
    omega: float = 20.0  # omega0: frequency of the Gabor sinusoid
    sigma: float = 10.0  # sigma0: inverse width of the Gaussian window
    # First layer's omega0 (None: omega). WIRE's code has one for the first layer and one for the
    # others; a dense 1D signal (audio) needs a first layer far faster than the hidden ones.
    first_omega: float | None = None


def gabor(u: Tensor, ratio: float) -> Tensor:
    """``cos(u) exp(-(ratio u)^2)``: the real Gabor wavelet of ``u = omega0 z`` with ``ratio = sigma0 / omega0``."""
    return torch.cos(u) * torch.exp(-(ratio * u).square())


@register_backbone("wire", GaborOptions)
class RealGaborBackbone(LayeredBackbone):
    """Layers ``cos(u) exp(-(sigma0/omega0 u)^2)`` with ``u = omega0 (W x + b)`` (the first
    layer's omega0 may differ; its window keeps the width ``1/sigma0`` in ``z``, as in WIRE)."""

    def __init__(self, in_dim: int, hidden: int, layers: int, skips: list[int], options: GaborOptions):
        super().__init__(in_dim, hidden, layers, skips, scale=options.omega)
        first = options.omega if options.first_omega is None else options.first_omega
        self.scales = [first] + self.scales[1:]
        self.ratios = [options.sigma / scale for scale in self.scales]
        self.activations = [partial(gabor, ratio=ratio) for ratio in self.ratios]

    def activation(self, u: Tensor) -> Tensor:
        return gabor(u, self.ratios[-1])

    def forward(self, h: Tensor, modulate: Modulate | None = None, record: list | None = None) -> Tensor:
        return run_stack(self.linears, h, self.activations, self.scales, self.skips, modulate, record=record)


class ComplexLinear(nn.Module):
    """Complex ``z W^T + b`` on ``(re, im)`` pairs ``[N, in]`` (real arithmetic: much faster on CPUs).

    Real and imaginary parts of ``W`` and ``b`` are drawn from ``U(-1/sqrt(in), 1/sqrt(in))``;
    they are stored as ``[..., 2]`` real parameters, so counts and optimisers see real numbers.
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim, 2).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_dim, 2).uniform_(-bound, bound))

    def forward(self, re: Tensor, im: Tensor) -> tuple[Tensor, Tensor]:
        wr, wi = self.weight[..., 0], self.weight[..., 1]
        # One real matmul: [re, im] @ [[Wr^T, Wi^T], [-Wi^T, Wr^T]] = [Re(zW^T), Im(zW^T)].
        block = torch.cat([torch.cat([wr.t(), wi.t()], dim=1), torch.cat([-wi.t(), wr.t()], dim=1)], dim=0)
        out = torch.cat([re, im], dim=-1) @ block
        n = wr.shape[0]
        return out[:, :n] + self.bias[:, 0], out[:, n:] + self.bias[:, 1]


def complex_gabor(ur: Tensor, ui: Tensor, ratio: float) -> tuple[Tensor, Tensor]:
    """``exp(i u - (ratio |u|)^2)`` for ``u = ur + i ui``, as ``(re, im)``; one exponent, so no overflow meets an underflow."""
    magnitude = torch.exp(-(ratio * ratio) * (ur.square() + ui.square()) - ui)
    return magnitude * torch.cos(ur), magnitude * torch.sin(ur)


def gaussian(u: Tensor) -> Tensor:
    """The low-pass path's scaling function ``exp(-u^2)``."""
    return torch.exp(-u.square())


def modulate_complex(modulate: Modulate, site: int, ur: Tensor, ui: Tensor) -> tuple[Tensor, Tensor]:
    u = modulate(site, torch.complex(ur, ui))
    return u.real, u.imag


@dataclass
class ComplexWaveletOptions:
    omega: float = 20.0  # omega0 of the complex Gabor wavelet
    sigma: float = 10.0  # sigma0 of the complex Gabor wavelet
    first_omega: float | None = None  # the first band-pass layer's omega0 (None: omega), as in ``wire``
    lowpass_fraction: float = 0.25  # share of the hidden width given to the low-pass path (0: no split)
    lowpass_sigma: float = 2.0  # inverse width s of the low-pass Gaussian exp(-(s z)^2)


@register_backbone("wire-complex", ComplexWaveletOptions)
class ComplexWaveletBackbone(Backbone):
    """Band-pass complex Gabor path beside a low-pass Gaussian path; features ``[low, Re, Im]``.

    Modulation sites: band-pass layers ``0 .. L-1``, then low-pass layers ``L .. 2L-1``.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, skips: list[int], options: ComplexWaveletOptions):
        super().__init__()
        if not 0.0 <= options.lowpass_fraction < 1.0:
            raise NeuralFieldsError(f"backbone 'wire-complex': lowpass_fraction must be in [0, 1), got {options.lowpass_fraction}")
        self.skips, self.layers, self.opts = set(skips), layers, options
        low = int(round(hidden * options.lowpass_fraction))
        band = max(1, int(round((hidden - low) / math.sqrt(2.0))))
        self.band_first = nn.Linear(in_dim, band)
        self.band_hidden = nn.ModuleList(ComplexLinear(d, band) for d in layer_inputs(in_dim, band, layers, skips)[1:])
        self.low_linears = linear_stack(in_dim, low, layers, skips) if low else nn.ModuleList()
        self.band_width, self.low_width = band, low
        self.out_dim, self.n_sites = low + 2 * band, 2 * layers
        self.place_atoms(torch.rand(band, in_dim) * 2 - 1)

    @torch.no_grad()
    def place_atoms(self, centres: Tensor) -> None:
        """Centre first-layer band-pass atoms on points ``[band, D]``: ``b = -W c``."""
        self.band_first.bias.copy_(-(self.band_first.weight * centres).sum(-1))

    @torch.no_grad()
    def init_from_signal(self, points: Tensor, importance: Tensor) -> None:
        """Draw atom centres among ``points [N, D]`` with probability proportional to ``importance [N]``."""
        weights = importance.float().clamp_min(0) + 1e-6 * importance.float().abs().max().clamp_min(1e-12)
        idx = torch.multinomial(weights, self.band_width, replacement=True)
        self.place_atoms(points[idx].to(self.band_first.weight))

    def forward(self, h: Tensor, modulate: Modulate | None = None) -> Tensor:
        o = self.opts
        ratio = o.sigma / o.omega
        first = o.omega if o.first_omega is None else o.first_omega
        ur = first * self.band_first(h)
        ui = torch.zeros_like(ur)
        if modulate is not None:
            ur, ui = modulate_complex(modulate, 0, ur, ui)
        re, im = complex_gabor(ur, ui, o.sigma / first)
        for i, linear in enumerate(self.band_hidden, start=1):
            if i in self.skips:
                re, im = torch.cat([re, h], dim=-1), torch.cat([im, torch.zeros_like(h)], dim=-1)
            ur, ui = linear(re, im)
            ur, ui = o.omega * ur, o.omega * ui
            if modulate is not None:
                ur, ui = modulate_complex(modulate, i, ur, ui)
            re, im = complex_gabor(ur, ui, ratio)
        feats = [re, im]
        if self.low_width:  # Gaussian layers exp(-u^2), u = s z; their sites follow the band-pass ones
            low = run_stack(self.low_linears, h, gaussian, [o.lowpass_sigma] * self.layers, self.skips, modulate,
                            first_site=self.layers)
            feats.insert(0, low)
        return torch.cat(feats, dim=-1)


@dataclass
class WireFieldConfig(MLPFieldConfig):
    backbone: str = "wire"
    hidden: int = 256
    layers: int = 3
    lr: float = 5e-3


@register_field("wire", WireFieldConfig)
class WireField(MLPField):
    """:class:`MLPField` with WIRE's real Gabor wavelet backbone."""


@dataclass
class ComplexWaveletFieldConfig(MLPFieldConfig):
    backbone: str = "wire-complex"
    hidden: int = 256
    layers: int = 3
    lr: float = 5e-3


@register_field("wire-complex", ComplexWaveletFieldConfig)
class ComplexWaveletField(MLPField):
    """:class:`MLPField` with the split complex-wavelet backbone."""
