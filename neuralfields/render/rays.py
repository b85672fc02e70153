"""The typed ray batch that samplers, the renderer, losses and batch sources pass around."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from ..cameras import Cameras


@dataclass
class RayBatch:
    """``R`` rays and what is known about them.

    Attributes:
        origins, dirs: ``[R, 3]`` world-space origins and unit directions.
        times: ``[R]`` times in [0, 1] for dynamic scenes, else None.
        image_ids: ``[R]`` int64 index of the training image each ray comes from (appearance
            codes, error maps), ``-1`` for rays of no training image; None when unknown.
        pixels: ``[R, 3]`` target colours (already over ``background``) when training.
        background: ``[R, 3]`` or ``[3]`` colour behind the scene, None for transparent.
    """

    origins: Tensor
    dirs: Tensor
    times: Tensor | None = None
    image_ids: Tensor | None = None
    pixels: Tensor | None = None
    background: Tensor | None = None

    def __len__(self) -> int:
        return self.origins.shape[0]

    @property
    def device(self) -> torch.device:
        return self.origins.device

    def to(self, device: torch.device | str) -> "RayBatch":
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if getattr(self, f.name) is not None})

    def select(self, index: Tensor | slice) -> "RayBatch":
        """The rays at ``index`` (a ``[3]`` background is shared by all rays and kept as is)."""
        def pick(v: Tensor | None) -> Tensor | None:
            return v if v is None or (v is self.background and v.dim() == 1) else v[index]

        return RayBatch(*(pick(getattr(self, f.name)) for f in fields(self)))

    @staticmethod
    def cat(parts: list["RayBatch"]) -> "RayBatch":
        """Concatenate batches; an optional attribute is kept only when every part has it."""
        def join(name: str) -> Tensor | None:
            values = [getattr(p, name) for p in parts]
            if any(v is None for v in values):
                return None
            # A shared ``[3]`` background becomes per-ray when parts are joined.
            return torch.cat([v.expand(len(p), -1) if name == "background" and v.dim() == 1 else v
                              for p, v in zip(parts, values)])

        return RayBatch(*(join(f.name) for f in fields(RayBatch)))

    @staticmethod
    def from_pixels(cameras: Cameras, index: int, pixels: Tensor, time: float | None = None,
                    image_id: int | None = None, background: Tensor | None = None) -> "RayBatch":
        """Rays through flat pixel indices ``pixels [R]`` (row-major) of ``cameras[index]``, on the
        cameras' device, all at ``time`` and with appearance code ``image_id`` when given."""
        origins, dirs = cameras.pixel_rays(index, pixels)
        n = pixels.shape[0]
        times = None if time is None else torch.full((n,), float(time), device=origins.device)
        ids = None if image_id is None else torch.full((n,), int(image_id), dtype=torch.long, device=origins.device)
        return RayBatch(origins, dirs, times, ids, background=background)

    def sample_times(self, ray_indices: Tensor) -> Tensor | None:
        """Per-sample times ``[S, 1]`` for samples of these rays (None for static scenes)."""
        return None if self.times is None else self.times[ray_indices, None]
