"""Loaders: a folder of posed images -> :class:`Scene`.

A format registers a ``detect(path)`` test and a ``load(path, split, **options)`` function with
:func:`register_format`; :func:`load_scene` picks the first format whose test passes, in
registration order: blender, nerfstudio, ngp, colmap, llff (the more specific layouts first).
See ``docs/data.md`` for the layouts and conventions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import NeuralFieldsError, file_error
from ..registry import Registry
from .scene import Scene, SplitNotFound, background_color, composite_background, split_indices


@dataclass
class Format:
    name: str
    detect: Callable[[Path], bool]
    load: Callable[..., Scene]


FORMATS: Registry[Format] = Registry("data format")


def register_format(name: str, detect: Callable[[Path], bool]):
    """Decorator registering a loader function under ``name``."""
    return FORMATS.register(name, wrap=lambda name, load: Format(name, detect, load))


def detect_format(path: Path) -> str:
    for fmt in FORMATS.values():
        if fmt.detect(path):
            return fmt.name
    raise file_error(path, f"no known dataset layout found (expected one of: {', '.join(FORMATS)})")


def load_scene(path: str | Path, split: str = "train", format: str = "auto", downscale: float = 1.0,
               scene_box: list[float] | None = None, val_every: int = 8) -> Scene:
    """Load one split of a dataset folder.

    Args:
        path: dataset folder.
        split: ``train``, ``val``, ``test`` (or ``all`` for formats without splits of their own).
        format: a registered format name, or ``auto`` to detect it.
        downscale: images and intrinsics are resized by ``1 / downscale``.
        scene_box: optional ``[xmin, ymin, zmin, xmax, ymax, zmax]`` replacing the loader's box.
        val_every: formats without splits hold out every ``val_every``-th image for val/test.
    Raises:
        SplitNotFound: the dataset has no such split (a subclass of NeuralFieldsError).
    """
    path = Path(path)
    if not path.exists():
        raise file_error(path, "dataset folder does not exist")
    if not path.is_dir():
        raise file_error(path, "expected a dataset folder, got a file")
    if downscale <= 0:
        raise NeuralFieldsError(f"--downscale must be positive, got {downscale}")
    name = detect_format(path) if format == "auto" else format
    scene = FORMATS[name].load(path, split, downscale=downscale, val_every=val_every)
    if scene_box is not None:
        scene.aabb = torch.tensor(scene_box, dtype=torch.float32).reshape(2, 3)
    return scene


def load_data(cfg, split: str = "train") -> Scene:
    """Load one split as a :class:`~neuralfields.config.DataConfig` describes it.

    An empty ``cfg.path`` means the built-in demo scene, generated on first use.
    """
    path = cfg.path
    if not path:
        from .demo import default_demo_dir, write_demo_scene

        path = write_demo_scene(default_demo_dir())
    return load_scene(path, split, cfg.format, cfg.downscale, cfg.scene_box, cfg.val_every)


# Loaders register themselves on import.
# Loaders register themselves on import; the import order is the detection order.
from . import blender, nerfstudio, ngp, colmap, llff  # noqa: E402,F401,I001

__all__ = ["Scene", "SplitNotFound", "FORMATS", "detect_format", "load_data", "load_scene", "register_format",
           "split_indices", "background_color", "composite_background"]
