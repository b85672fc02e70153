"""Rays -> rendered buffers for any field: a sampler places samples, :func:`evaluate` does the rest.

The renderer knows nothing about a field's insides: it hands the sampler's packed samples and
the coordinate map to :func:`~neuralfields.render.evaluate.evaluate`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..cameras import Cameras
from ..config import RenderConfig
from ..device import module_device
from ..fields.base import Field
from .evaluate import RenderOutputs, Space, evaluate
from .rays import RayBatch
from .samplers import Sampler

# Buffers render_camera can produce, with their channel counts.
RENDER_OUTPUTS: dict[str, int] = {"rgb": 3, "depth": 1, "opacity": 1, "normal": 3}


class Renderer:
    """Renders rays with a :class:`Field` through ``sampler`` and the coordinate map ``space``;
    ``appearance`` gives rays their per-image codes when the field reads them; samples lighter
    than ``ray_color_below`` share one colour per ray (baked fields; see :func:`evaluate`)."""

    def __init__(self, sampler: Sampler, space: Space, cfg: RenderConfig | None = None, appearance=None,
                 ray_color_below: float = 0.0):
        self.sampler, self.space, self.cfg, self.appearance = sampler, space, cfg or RenderConfig(), appearance
        self.ray_color_below = ray_color_below

    def render_rays(self, field: Field, rays: RayBatch, training: bool = False, normals: bool = False) -> RenderOutputs:
        """Sample and evaluate ``rays`` (jittered samples when ``training``)."""
        samples = self.sampler.sample(field, rays, training)
        return evaluate(field, self.space, samples, rays, normals=normals, appearance=self.appearance,
                        skip_color_below=0.0 if training else self.cfg.skip_color_below,
                        ray_color_below=0.0 if training else self.ray_color_below)

    @torch.no_grad()
    def render_camera(self, field: Field, cameras: Cameras, index: int, time: float | None = None,
                      background: Tensor | None = None, outputs: Sequence[str] | None = None,
                      chunk: int | None = None, image_id: int | None = None) -> dict[str, Tensor]:
        """Render one full image of ``cameras[index]`` in chunks of rays, on the field's device.

        Rays are generated per chunk, so memory beyond the output buffers stays bounded at any
        resolution. ``outputs`` picks buffers among ``rgb [H, W, 3]``, ``depth [H, W]``,
        ``opacity [H, W]`` and ``normal [H, W, 3]`` (world-space unit normals); default: the
        first three. Buffers are returned on the CPU. ``image_id`` renders with that training
        image's appearance code (default: the code of novel views).
        """
        outputs = tuple(outputs) if outputs is not None else ("rgb", "depth", "opacity")
        unknown = [o for o in outputs if o not in RENDER_OUTPUTS]
        if unknown:
            raise ValueError(f"unknown render outputs {unknown}; available: {', '.join(RENDER_OUTPUTS)}")
        device = module_device(field)
        camera = cameras[torch.tensor([index])].to(device)
        chunk = chunk or self.cfg.chunk_rays
        w, h = int(camera.width[0]), int(camera.height[0])
        n = w * h
        bg = None if background is None else background.to(device)
        buffers = {k: torch.empty(n, RENDER_OUTPUTS[k]) for k in outputs}
        for start in range(0, n, chunk):
            pix = torch.arange(start, min(start + chunk, n), device=device)
            origins, dirs = camera.pixel_rays(0, pix)
            times = None if time is None else torch.full((pix.shape[0],), float(time), device=device)
            ids = None if image_id is None else torch.full((pix.shape[0],), int(image_id), device=device)
            out = self.render_rays(field, RayBatch(origins, dirs, times, ids, background=bg), normals="normal" in outputs)
            for key, buf in buffers.items():
                buf[start:start + pix.shape[0]] = out.buffer(key).reshape(pix.shape[0], -1).cpu()
        return {k: v.reshape(h, w, -1).squeeze(-1) if RENDER_OUTPUTS[k] == 1 else v.reshape(h, w, -1)
                for k, v in buffers.items()}
