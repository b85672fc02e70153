"""The signals ``neuralfields fit`` reads, one module per kind behind one interface (:mod:`.base`).

A new kind is one module here: a :class:`Signal` subclass decorated with :func:`register_signal`
that names its file suffixes, reads a file into values on a grid, and scores and writes a
reconstruction; import it below so that it registers.
"""

from .base import SIGNALS, ReadOptions, Signal, kind_of, read_signal, register_signal

# Each module registers its kind on import.
from . import image, audio, video, shape  # noqa: E402,F401

__all__ = ["SIGNALS", "ReadOptions", "Signal", "audio", "image", "kind_of", "read_signal", "register_signal", "shape", "video"]
