"""Signal fitting with the same fields that render radiance fields: images, audio, videos, shapes."""

from .fitting import FitConfig, FitResult, fit_signal, predict, write_outputs
from .image import fit_image, pixel_coords, render_image
from .io import read_signal_image
from .signals import SIGNALS, ReadOptions, Signal, read_signal

__all__ = ["FitConfig", "FitResult", "ReadOptions", "SIGNALS", "Signal", "fit_image", "fit_signal", "pixel_coords",
           "predict", "read_signal", "read_signal_image", "render_image", "write_outputs"]
