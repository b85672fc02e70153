"""Fitting a 2D image array: :func:`fit_image` is :func:`~.fitting.fit_signal` on an
:class:`~.signals.image.ImageSignal` (pixel centres in ``[-1, 1]^2``, ``(x, y)`` order)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..fields import Field
from .fitting import FitConfig, FitResult, fit_signal, predict
from .signals.base import gradient_magnitude
from .signals.image import ImageSignal, error_heatmap, pixel_coords, side_by_side

__all__ = ["FitConfig", "FitResult", "error_heatmap", "fit_image", "gradient_magnitude", "pixel_coords",
           "render_image", "side_by_side"]


def fit_image(image: np.ndarray, name: str, options: dict | None = None, cfg: FitConfig | None = None,
              progress: bool = True, out_dir: str | Path | None = None, resume: bool = False,
              device: torch.device | str = "cpu") -> FitResult:
    """Fit ``image [H, W, C]`` (floats in [0, 1]) with field ``name`` and return the result
    (``reconstruction [H, W, C]``); see :func:`~.fitting.fit_signal`."""
    return fit_signal(ImageSignal(image), name, options, cfg, progress, out_dir, resume, device)


@torch.no_grad()
def render_image(model: Field, height: int, width: int, chunk: int = 1 << 16) -> torch.Tensor:
    """The field over the pixel grid as ``[H, W, C]`` clipped to ``[0, 1]`` (on the CPU)."""
    pixels = ImageSignal(np.zeros((height, width, 1), dtype=np.float32))
    return predict(model, pixels, chunk).reshape(height, width, -1)
