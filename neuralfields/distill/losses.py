"""PVD's per-sample and per-pixel losses, and the feature projection between two fields.

All per-sample losses compare teacher and student on the *same* sample points (see
:mod:`.pvd`), so each term is a plain average over samples:

- features: ``||P(geo_s) - geo_t||^2`` divided by the teacher features' variance, where ``P`` is a
  learned linear map when the two fields' ``geo_dim`` differ (FitNets-style: projecting the
  student into the teacher's space cannot collapse both sides to a constant) and the identity
  when they agree. A value of 1 means "no better than predicting the mean feature";
- density: on the raw (pre-activation, i.e. log) density, PVD's special treatment: both sides are
  compared inside ``[low, high]``, the range from invisible to opaque at the render step. Outside
  it the exact value changes nothing in an image, yet exponential densities span dozens of
  log-units there and would dominate the loss and its gradients. Unlike a hard clamp of both
  sides, a student value beyond a bound still gets a gradient unless the teacher is beyond the
  same bound (a hard clamp would leave a student stuck at -10 when the teacher says 3). Huber
  (delta 1) keeps the first steps' large errors from spiking the gradients;
- colour: per-sample RGB MSE; pixels: RGB MSE of the composited rays.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..device import module_device
from ..errors import NeuralFieldsError
from ..fields.base import Field

# Opacity per step below which a sample is invisible, and optical thickness above which it is opaque.
INVISIBLE_ALPHA = 1e-3
OPAQUE_TAU = 10.0


def default_density_clamp(step_size: float) -> tuple[float, float]:
    """``(low, high)`` raw-density bounds for a render step: alpha 1e-3 .. optical thickness 10.

    On our lego preset (step 0.0101) this gives ``[-2.3, 6.9]``, close to the ``[-2, 7]`` that
    PVD's code fixes for every scene.
    """
    return math.log(INVISIBLE_ALPHA / step_size), math.log(OPAQUE_TAU / step_size)


def log_density_fn(field: Field) -> Callable[[Tensor], Tensor]:
    """``raw -> log(sigma)`` for ``field``: the identity for exponential activations (every field
    here), else ``log(density_activation(raw))``, so differently activated fields stay comparable."""
    probe = torch.linspace(-3.0, 5.0, 9, device=module_device(field))
    with torch.no_grad():
        exp_like = torch.allclose(field.density_activation(probe), torch.exp(probe), rtol=1e-3, atol=1e-6)
    if exp_like:
        return lambda raw: raw
    return lambda raw: torch.log(field.density_activation(raw).clamp_min(1e-12))


class Projection(nn.Module):
    """Student geometry features ``[S, Fs]`` -> teacher feature space ``[S, Ft]``."""

    def __init__(self, student_dim: int, teacher_dim: int, linear: bool):
        super().__init__()
        if not linear and student_dim != teacher_dim:
            raise NeuralFieldsError(f"distill.projection 'identity' needs equal feature sizes; the student has "
                                    f"{student_dim}, the teacher {teacher_dim} (use 'auto' or 'linear')")
        self.map = nn.Linear(student_dim, teacher_dim) if linear else nn.Identity()

    @property
    def is_identity(self) -> bool:
        return isinstance(self.map, nn.Identity)

    def forward(self, geo: Tensor) -> Tensor:
        return self.map(geo)


# name -> build(student_dim, teacher_dim) (the registry behind ``distill.projection``)
PROJECTIONS: dict[str, Callable[[int, int], Projection]] = {
    "auto": lambda s, t: Projection(s, t, linear=s != t),
    "linear": lambda s, t: Projection(s, t, linear=True),
    "identity": lambda s, t: Projection(s, t, linear=False),
}


def build_projection(kind: str, student_dim: int, teacher_dim: int) -> Projection:
    if kind not in PROJECTIONS:
        raise NeuralFieldsError(f"distill.projection: unknown '{kind}'; available: {', '.join(PROJECTIONS)}")
    return PROJECTIONS[kind](student_dim, teacher_dim)


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is not None:
        values = values[mask]
    return values.mean() if values.numel() else values.sum()


def feature_loss(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """Variance-normalised MSE of projected student features ``[S, F]`` against the teacher's."""
    if mask is not None:
        student, teacher = student[mask], teacher[mask]
    if teacher.shape[0] < 2:
        return student.sum() * 0.0
    var = teacher.var(dim=0).mean().clamp_min(1e-8)
    return ((student - teacher) ** 2).mean() / var


def density_loss(student: Tensor, teacher: Tensor, low: float, high: float, mask: Tensor | None = None) -> Tensor:
    """Clamped Huber loss on raw (log) densities ``[S]``; see the module docstring."""
    target = teacher.clamp(low, high)
    same_side = ((target >= high) & (student >= high)) | ((target <= low) & (student <= low))
    err = F.smooth_l1_loss(student, target, reduction="none", beta=1.0) * (~same_side)
    return _masked_mean(err, mask)


def color_loss(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """Per-sample RGB MSE ``[S, 3]``."""
    return _masked_mean(((student - teacher) ** 2).mean(-1), mask)


def rgb_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Composited pixel MSE ``[R, 3]``."""
    return F.mse_loss(student, teacher)
