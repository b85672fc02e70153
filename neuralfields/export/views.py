"""Training-like views of a run, rendered for depth fusion and point clouds."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import NeuralFieldsError


def training_views(info, views: int | None = None, downscale: float = 1.0) -> Cameras:
    """``views`` training cameras spread evenly over the list (all when None), resized by ``1/downscale``."""
    cams = info.cameras
    if views is not None:
        if views < 1:
            raise NeuralFieldsError(f"--views must be at least 1, got {views}")
        idx = np.unique(np.linspace(0, len(cams) - 1, min(views, len(cams))).round().astype(np.int64))
        cams = cams[torch.as_tensor(idx)]
    if downscale <= 0:
        raise NeuralFieldsError(f"--downscale must be positive, got {downscale}")
    w, h = int(cams.width[0]), int(cams.height[0])
    return cams.resized(max(1, round(w / downscale)), max(1, round(h / downscale)))


def default_time(info, time: float | None) -> float | None:
    """Static runs ignore time; dynamic ones use ``time`` or 0 (the first frame)."""
    if not getattr(info, "dynamic", False):
        return None
    t = 0.0 if time is None else float(time)
    if not 0.0 <= t <= 1.0:
        raise NeuralFieldsError(f"--time must lie in [0, 1], got {t}")
    return t


def render_views(model, cameras: Cameras, time: float | None, outputs: tuple[str, ...],
                 background: Tensor | None = None) -> Iterator[tuple[int, dict[str, Tensor]]]:
    """Yield ``(index, buffers)`` for every camera, over ``background`` (default: the run's; zeros
    keep the colour premultiplied)."""
    for i in range(len(cameras)):
        yield i, model.render_camera(cameras, i, time, outputs=outputs, background=background)
