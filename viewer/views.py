"""The views the page shows: one-frame camera paths (an orbit view or a training camera), a
picture at a given size, and a coarse picture first that is refined to the full one."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from neuralfields.camera_paths import CameraPath
from neuralfields.errors import NeuralFieldsError
from neuralfields.export.video import VisualStyle

from .core import Viewer, render_picture, run_size
from .navigation import OrbitView, format_target, view_camera
from .runs import LoadedRun, checkpoint_note


def orbit_view(run: LoadedRun, view: OrbitView, time_value: float | None) -> Callable[[int], CameraPath]:
    """Size -> one-frame path of the orbit camera (controls checked before, by :meth:`OrbitView.checked`)."""
    times = None if time_value is None else torch.tensor([time_value])

    def at(side: int) -> CameraPath:
        return CameraPath(view_camera(run.frame, view, *run_size(run, side)), 1.0, times, "orbit view")

    return at


def training_view(run: LoadedRun, index) -> tuple[Callable[[int], CameraPath], int]:
    """Size -> one-frame path of training camera ``index`` (its pose and field of view exactly), and the index."""
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise NeuralFieldsError(f"training camera: expected an index, got {index!r}") from None
    last = run.num_cameras - 1
    if i != index or not 0 <= i <= last:
        raise NeuralFieldsError(f"training camera: index must be an integer in [0, {last}], got {index}")
    cam = run.model.info.cameras[i]
    times = torch.tensor([run.model.info.times[i]]) if run.dynamic and run.model.info.times is not None else None

    def at(side: int) -> CameraPath:
        return CameraPath(cam.resized(*run_size(run, side)), 1.0, times, "training camera")

    return at, i


def picture(viewer: Viewer, run: LoadedRun, view: Callable[[int], CameraPath], side: int, output: str,
            style: VisualStyle) -> tuple[np.ndarray, CameraPath, float]:
    """``uint8 [H, W, 3]`` at ``side`` pixels, its path and the render time in seconds."""
    start = time.perf_counter()
    path = view(side)
    with viewer.lock:
        image = render_picture(run, path, output, style)
    return image, path, time.perf_counter() - start


def refine(viewer: Viewer, run: LoadedRun, view: Callable[[int], CameraPath], side: int, output: str,
           preview: bool = True) -> Iterator[tuple[np.ndarray | str, str]]:
    """Yield a coarse picture first (large views, when ``preview``), then the full one saved as PNG, with timings."""
    cfg = viewer.cfg
    style = VisualStyle()  # depth range estimated on the first pass and kept for the second
    note = ""
    if preview and side > 2 * cfg.preview_side:
        image, path, seconds = picture(viewer, run, view, cfg.preview_side, output, style)
        note = f"; preview {path.width}x{path.height} in {seconds:.2f} s"
        yield image, f"preview {path.width}x{path.height} {output} in {seconds:.2f} s, refining to {side} px ..."
    image, path, seconds = picture(viewer, run, view, side, output, style)
    png = viewer.files.new("frame", ".png")
    Image.fromarray(image).save(png)
    depth = f", depth range {style.depth_range[0]:.3g}..{style.depth_range[1]:.3g}" if output == "depth" else ""
    yield str(png), f"{output} {path.width}x{path.height} in {seconds:.2f} s{note}{depth} · {checkpoint_note(run)}"


def pose_values(view: OrbitView) -> tuple:
    """Slider and target values that show ``view`` (clamped into the sliders' ranges)."""
    v = view.clamped()
    return round(v.azimuth, 2), round(v.elevation, 2), round(v.distance, 4), format_target(v.target)
