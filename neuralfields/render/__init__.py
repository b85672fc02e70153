"""Rendering: rays, samplers, the one sample-evaluation path, compositing and the renderer."""

from .compositing import accumulate, composite, render_weights
from .evaluate import RenderOutputs, SampleOutputs, density_at, evaluate, query_density
from .marching import PackedSamples, march
from .occupancy import OccupancyGrid, cascade_levels
from .rays import RayBatch
from .renderer import RENDER_OUTPUTS, Renderer
from .samplers import SAMPLERS, GridUpdate, OccupancySampler
from .space import SPACES, SceneBox

__all__ = ["GridUpdate", "OccupancyGrid", "OccupancySampler", "PackedSamples", "RENDER_OUTPUTS", "RayBatch",
           "RenderOutputs", "Renderer", "SAMPLERS", "SPACES", "SampleOutputs", "SceneBox", "accumulate",
           "cascade_levels", "composite", "density_at", "evaluate", "march", "query_density", "render_weights"]
