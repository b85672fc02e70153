"""The ``Scene``: what every loader returns and every later stage reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..cameras import Cameras


@dataclass
class Scene:
    """Posed images of one split.

    Attributes:
        images: ``[N, H, W, C]`` uint8, C = 3 (RGB) or 4 (RGBA, alpha = coverage, not premultiplied).
        cameras: the N cameras (see :mod:`neuralfields.cameras` for the convention).
        aabb: ``[2, 3]`` world-space scene box (min, max) that the field covers.
        times: ``[N]`` float in [0, 1] for dynamic scenes, else None.
        aabb_scale: how many times larger than the inner (object) box the scene box is; the
            occupancy grid uses ``log2(aabb_scale) + 1`` cascades.
        files: image file per frame, for messages and eval outputs.
    """

    images: Tensor
    cameras: Cameras
    aabb: Tensor
    split: str = "train"
    times: Tensor | None = None
    aabb_scale: float = 1.0
    files: list[str] = field(default_factory=list)
    root: Path | None = None
    format: str = ""

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def height(self) -> int:
        return self.images.shape[1]

    @property
    def width(self) -> int:
        return self.images.shape[2]

    @property
    def has_alpha(self) -> bool:
        return self.images.shape[-1] == 4

    @property
    def is_dynamic(self) -> bool:
        return self.times is not None

    def pixels(self, image_idx: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """Float pixel values ``[R, C]`` in [0, 1] at integer positions."""
        return self.images[image_idx, y, x].float() / 255.0

    def image(self, index: int) -> Tensor:
        """Float image ``[H, W, C]`` in [0, 1]."""
        return self.images[index].float() / 255.0


def composite_background(rgba: Tensor, background: Tensor) -> Tensor:
    """Blend ``[..., 4]`` RGBA over a ``[..., 3]`` (or ``[3]``) background; RGB passes through."""
    if rgba.shape[-1] == 3:
        return rgba
    alpha = rgba[..., 3:4]
    return rgba[..., :3] * alpha + background * (1.0 - alpha)


def background_color(name: str) -> Tensor:
    """The fixed colour named by a ``background`` option (``random`` evaluates on white)."""
    return torch.zeros(3) if name == "black" else torch.ones(3)
