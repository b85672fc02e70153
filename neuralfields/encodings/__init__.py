"""Encodings: points or directions -> feature vectors (no knowledge of rays or scenes)."""

from .frequency import FrequencyEncoding
from .hashgrid import HashGrid
from .sh import SphericalHarmonics

__all__ = ["FrequencyEncoding", "HashGrid", "SphericalHarmonics"]
