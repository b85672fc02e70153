"""Rendering: occupancy grid, ray marching, compositing and the renderer that ties them."""

from .compositing import accumulate, composite, render_weights
from .marching import PackedSamples, march
from .occupancy import OccupancyGrid, cascade_levels
from .renderer import Renderer

__all__ = ["OccupancyGrid", "PackedSamples", "Renderer", "accumulate", "cascade_levels", "composite", "march", "render_weights"]
