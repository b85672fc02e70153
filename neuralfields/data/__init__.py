"""Loaders: a folder of posed images -> :class:`Scene`.

A format registers a ``detect(path)`` test and a ``load(path, split, **options)`` function with
:func:`register_format`; :func:`load_scene` picks the first format whose test passes, in
registration order: blender, nerfstudio, ngp, colmap, llff (the more specific layouts first).
A format whose files name their splits (blender's ``transforms_{split}.json``) also registers
``splits(path)``; the others hold out every ``val_every``-th image (:func:`split_indices`).
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
    """A registered layout. ``splits(path)`` lists the splits a folder's files name, in the order
    train, val, test; None for layouts without splits of their own."""

    name: str
    detect: Callable[[Path], bool]
    load: Callable[..., Scene]
    splits: Callable[[Path], list[str]] | None = None


FORMATS: Registry[Format] = Registry("data format")


def register_format(name: str, detect: Callable[[Path], bool], splits: Callable[[Path], list[str]] | None = None):
    """Decorator registering a loader function under ``name``."""
    return FORMATS.register(name, wrap=lambda name, load: Format(name, detect, load, splits))


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


def held_out_split(path: str | Path, format: str = "auto") -> str:
    """The split to score when a folder of held-out views is given without one: its only split,
    ``test`` among several (the benchmark convention), and ``all`` of a layout without splits
    (a folder of held-out photos is scored whole, not every ``val_every``-th image of it)."""
    path = Path(path)
    fmt = FORMATS[detect_format(path) if format == "auto" else format]
    if fmt.splits is None:
        return "all"
    found = fmt.splits(path)
    if len(found) == 1:
        return found[0]
    return "test" if "test" in found else "all"


def describe_split(scene: Scene, val_every: int, count: int | None = None) -> str:
    """Which images of ``scene`` a score covers, for the eval line and its JSON: e.g. ``split
    'test' (transforms_test.json): 4 images`` or ``all 12 images of the folder``; ``count``, when
    given, is how many of them were scored (the first ones)."""
    n = len(scene)
    scored = f"the first {count} of {n} images" if count is not None and count < n else f"{n} images"
    if scene.split == "all":
        return f"all images of the folder: {scored}"
    fmt = FORMATS.get(scene.format)
    if fmt is not None and fmt.splits is not None:
        return f"split '{scene.split}' (transforms_{scene.split}.json): {scored}"
    held = "every image but each" if scene.split == "train" else "each"
    return f"split '{scene.split}' ({held} {val_every}th image of the folder, from the first): {scored}"


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

__all__ = ["Scene", "SplitNotFound", "FORMATS", "describe_split", "detect_format", "held_out_split", "load_data",
           "load_scene", "register_format",
           "split_indices", "background_color", "composite_background"]
