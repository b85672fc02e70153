"""Rendering: rays, samplers, the one sample-shading path and compositing."""

from .compositing import accumulate, composite, dense_weights, render_weights
from .marching import PackedSamples, march
from .occupancy import OccupancyGrid, cascade_levels
from .rays import RayBatch
from .samplers import SAMPLERS, GridUpdate, OccupancySampler
from .shading import RenderOutputs, SampleOutputs, density_at, shade
from .space import SPACES, SceneBox

__all__ = ["GridUpdate", "OccupancyGrid", "OccupancySampler", "PackedSamples", "RayBatch", "RenderOutputs",
           "SAMPLERS", "SPACES", "SampleOutputs", "SceneBox", "accumulate", "cascade_levels", "composite",
           "dense_weights", "density_at", "march", "render_weights", "shade"]
