"""Spherical-harmonic colour of Gaussians, as 3D Gaussian splatting stores and evaluates it.

Each Gaussian holds ``(degree + 1)^2`` RGB coefficients. The colour seen from direction ``d``
(unit, from the camera centre towards the Gaussian) is ``max(0, sum_k Y_k(d) c_k + 0.5)``: the
``+ 0.5`` puts a zero coefficient at mid-grey, which is why the DC term of an RGB colour is
``(rgb - 0.5) / Y_0``. The basis is the real SH of :class:`~neuralfields.encodings.SphericalHarmonics`
(the same signs and constants as the reference implementation), so a coefficient written to a
``.ply`` means what splat viewers expect it to mean.
"""

from __future__ import annotations

import functools

from torch import Tensor

from ..encodings import SphericalHarmonics

SH_C0 = 0.28209479177387814  # Y_0: the constant basis function
MAX_DEGREE = 3  # what the .ply layout has room for (45 rest coefficients)


def sh_bases(degree: int) -> int:
    """Coefficients per colour channel up to ``degree``."""
    return (degree + 1) ** 2


@functools.lru_cache(maxsize=None)
def _basis(degree: int) -> SphericalHarmonics:
    return SphericalHarmonics(degree + 1)  # the encoding counts bands, we count degrees


def sh_colours(coeffs: Tensor, dirs: Tensor, degree: int) -> Tensor:
    """RGB ``[N, 3]`` of Gaussians with ``coeffs [N, K, 3]`` seen along unit ``dirs [N, 3]``,
    using the bands up to ``degree`` (``(degree + 1)^2 <= K``: the progressive degree of training)."""
    k = sh_bases(degree)
    basis = _basis(degree)(dirs)  # [N, k]
    return ((basis[:, :, None] * coeffs[:, :k]).sum(1) + 0.5).clamp_min(0.0)


def rgb_to_sh(rgb: Tensor) -> Tensor:
    """The DC coefficient ``[..., 3]`` that shows colour ``rgb`` from every direction."""
    return (rgb - 0.5) / SH_C0


def sh_to_rgb(dc: Tensor) -> Tensor:
    """The view-independent colour ``[..., 3]`` of DC coefficients (what ``.splat`` files store)."""
    return dc * SH_C0 + 0.5
