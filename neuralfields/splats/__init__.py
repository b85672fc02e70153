"""3D Gaussian splats: the scene (parameters), densification, a rasteriser (pure PyTorch; gsplat
when installed on CUDA) and the INRIA ``.ply`` / antimatter15 ``.splat`` files."""

from .gsplat_backend import gsplat_available  # importing it registers the gsplat backend
from .rasterize import BACKENDS, RasterOutput, RasterSettings, rasterize
from .scene import Gaussians, GaussianScene

__all__ = ["BACKENDS", "Gaussians", "GaussianScene", "RasterOutput", "RasterSettings", "gsplat_available", "rasterize"]
