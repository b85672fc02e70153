"""Encodings: points or directions -> feature vectors (no knowledge of rays or scenes)."""

from .frequency import FrequencyEncoding
from .hashgrid import HashGrid
from .planes import PlaneEncoding
from .sh import SphericalHarmonics

__all__ = ["FrequencyEncoding", "HashGrid", "PlaneEncoding", "SphericalHarmonics"]
