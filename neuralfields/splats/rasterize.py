"""Rendering Gaussians into a camera: one interface, backends by name.

``rasterize(gaussians, cameras, index, background)`` -> :class:`RasterOutput`. The ``torch``
backend (:mod:`.project` + :mod:`.composite`) runs anywhere and differentiates by autograd; the
``gsplat`` backend (:mod:`.gsplat_backend`) uses gsplat's CUDA kernels when that package is
installed and the Gaussians are on a CUDA device. ``backend="auto"`` takes the first available
of :data:`AUTO_ORDER`.

For densification every backend returns ``means2d``, the screen-space means, with their
gradient retained: after ``backward`` its ``.grad`` is the view-space positional gradient 3DGS
densifies by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import NeuralFieldsError
from ..registry import Registry
from .composite import composite
from .project import intrinsics, project, view_matrix
from .scene import Gaussians
from .sh import sh_colours


@dataclass
class RasterSettings:
    """How Gaussians are drawn (defaults: the 3DGS rule; gsplat's near plane).

    Attributes:
        near, far: camera-space depth range kept.
        eps2d: low-pass dilation added to every 2D covariance (pixels^2).
        max_alpha, min_alpha, min_transmittance: the compositing rule (:mod:`.composite`).
        pair_budget: torch backend: most candidate (pixel, Gaussian) pairs held at once.
        backend: ``auto``, or a name in :data:`BACKENDS`.
    """

    near: float = 0.01
    far: float = 1e10
    eps2d: float = 0.3
    max_alpha: float = 0.99
    min_alpha: float = 1 / 255
    min_transmittance: float = 1e-4
    pair_budget: int = 1 << 20  # small enough that later chunks skip the pixels earlier ones made opaque
    backend: str = "auto"


@dataclass
class RasterOutput:
    """One rendered view.

    Attributes:
        rgb: ``[H, W, 3]``; alpha: ``[H, W]`` accumulated opacity.
        depth: ``[H, W]`` accumulated camera-space z (weights times depths, not normalised by
            alpha), when asked for; else None.
        means2d: screen-space means (``[N, 2]``, or the backend's own ``[1, N, 2]``), gradient
            retained when they require one; read ``means2d.grad.reshape(-1, 2)``.
        radii: ``[N]`` footprint radius in pixels, 0 where the Gaussian was not drawn.
    """

    rgb: Tensor
    alpha: Tensor
    means2d: Tensor
    radii: Tensor
    depth: Tensor | None = None

    @property
    def visible(self) -> Tensor:
        return self.radii > 0


@dataclass
class Backend:
    """A rasteriser: ``render(gaussians, viewmat [4, 4], K [3, 3], width, height, background [3],
    settings, depth) -> RasterOutput``; ``available(device) -> bool``."""

    render: Callable[..., RasterOutput]
    available: Callable[[torch.device], bool]


BACKENDS: Registry[Backend] = Registry("rasteriser backend")
AUTO_ORDER = ("gsplat", "torch")  # fastest first


def render_torch(g: Gaussians, viewmat: Tensor, K: Tensor, width: int, height: int, background: Tensor,
                 s: RasterSettings, depth: bool = False) -> RasterOutput:
    proj = project(g, viewmat, K, width, height, s.near, s.far, s.eps2d)
    if proj.means2d.requires_grad:
        proj.means2d.retain_grad()
    centre = -viewmat[:3, :3].T @ viewmat[:3, 3]
    dirs = g.means - centre
    colours = sh_colours(g.sh, dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12), g.degree)
    if depth:  # one more channel to composite, over a background at depth 0
        colours, background = torch.cat([colours, proj.depths[:, None]], 1), torch.cat([background, background[:1] * 0])
    image, alpha = composite(proj, g.opacities, colours, width, height, background, s.max_alpha, s.min_alpha,
                             s.min_transmittance, s.pair_budget)
    return RasterOutput(image[..., :3], alpha, proj.means2d, proj.radii, image[..., 3] if depth else None)


BACKENDS.register("torch", Backend(render_torch, lambda device: True))


def choose_backend(name: str, device: torch.device) -> Backend:
    """The backend ``name`` (``auto``: the first of :data:`AUTO_ORDER` available on ``device``)."""
    if name == "auto":
        name = next(n for n in AUTO_ORDER if n in BACKENDS and BACKENDS[n].available(device))
    backend = BACKENDS[name]
    if not backend.available(device):
        raise NeuralFieldsError(f"rasteriser backend '{name}' is not available on {device} "
                                f"(gsplat needs the gsplat package and a CUDA device)")
    return backend


def rasterize(g: Gaussians, cameras: Cameras, index: int, background: Tensor | None = None,
              settings: RasterSettings | None = None, depth: bool = False) -> RasterOutput:
    """Render ``g`` into camera ``index`` of ``cameras`` at its full size.

    ``background``: ``[3]`` (default black), on any device. Cameras may be on the CPU: their
    matrices move to the Gaussians' device. ``depth``: also composite camera-space depth.
    """
    s = settings or RasterSettings()
    device = g.means.device
    viewmat, K = view_matrix(cameras, index).to(device), intrinsics(cameras, index).to(device)
    width, height = int(cameras.width[index]), int(cameras.height[index])
    bg = torch.zeros(3, device=device) if background is None else background.to(device=device, dtype=torch.float32)
    return choose_backend(s.backend, device).render(g, viewmat, K, width, height, bg, s, depth)
