"""The ``Scene``: what every loader returns and every later stage reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import NeuralFieldsError
from .normalize import point_near_depths


class SplitNotFound(NeuralFieldsError):
    """The dataset has no such split (e.g. a NeRF-synthetic folder with only ``transforms_train.json``).

    Callers that can do without the split (training without validation) catch this one.
    """


def split_indices(n: int, split: str, every: int) -> list[int]:
    """Indices of ``split`` among ``n`` frames of a capture that has no split of its own.

    Every ``every``-th frame (0, every, 2 * every, ...) is held out for ``val`` and ``test``
    (the LLFF / mip-NeRF 360 protocol, so both name the same frames); ``train`` keeps the rest and
    ``all`` keeps everything. A single frame is shared by all splits.
    """
    if split not in ("train", "val", "test", "all"):
        raise NeuralFieldsError(f"unknown split '{split}'; expected train, val, test or all")
    if int(every) < 2:
        raise NeuralFieldsError(f"val_every must be at least 2 (every n-th frame is held out), got {every}")
    if split == "all" or n < 2:
        return list(range(n))
    held = [i for i in range(n) if i % every == 0]
    return held if split in ("val", "test") else [i for i in range(n) if i % every != 0]


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
        root: the dataset folder; format: the loader that read it.
        bounds: ``[N, 2]`` near/far depth per image in scene units (LLFF), else None.
        kind: ``"object"`` when the cameras look inward at a bounded region, ``"forward"`` for
            forward-facing captures (every camera looks the same way at a scene in front of all
            of them: LLFF), ``"unbounded"`` for outward-looking captures and scenes with distant
            background (a hint for the renderer; see :func:`neuralfields.data.normalize.scene_kind`).
        points: ``[P, 3]`` sparse points in scene coordinates (COLMAP, nerfstudio's PLY), else None.
        transform: ``[4, 4]`` similarity the loader applied, from the world frame of the dataset
            files to the scene's (see :mod:`neuralfields.data.normalize`); None when poses are used
            as stored.
        applied_transform: ``[4, 4]`` transform the dataset's own tools had applied to the original
            capture before writing the files (nerfstudio's ``applied_transform``), else None.
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
    bounds: Tensor | None = None
    kind: str = "object"
    points: Tensor | None = None
    transform: Tensor | None = None
    applied_transform: Tensor | None = None

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

    @property
    def bounded(self) -> bool:
        """Whether the renderer may treat the scene as an object in its box: the cameras look
        inward (``kind``). Captures whose cameras look outward are unbounded and get a
        contracted space, forward-facing ones NDC; the real-capture presets contract inward
        captures too (their photos show a background)."""
        return self.kind == "object"

    @property
    def near_depths(self) -> np.ndarray | None:
        """``[N]`` the nearest depth each camera sees (scene units): the near bounds, else a low
        quantile of the depths of the points in front of it; None when neither is known."""
        if self.bounds is not None:
            return self.bounds[:, 0].double().numpy()
        return point_near_depths(self.cameras.c2w.double().numpy(), None if self.points is None else self.points.numpy())

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


def batch_background(kind: str, n: int, device: torch.device | str = "cpu") -> Tensor:
    """Background colours ``[n, 3]`` of a training batch: ``random`` noise teaches a field that
    empty space is transparent; otherwise the fixed colour."""
    if kind == "random":
        return torch.rand(n, 3, device=device)
    return background_color(kind).to(device).expand(n, 3)
