"""2D signal fitting with the same fields that render radiance fields."""

from .image import FitConfig, FitResult, fit_image, pixel_coords, render_image, write_outputs
from .io import read_signal_image

__all__ = ["FitConfig", "FitResult", "fit_image", "pixel_coords", "read_signal_image", "render_image", "write_outputs"]
