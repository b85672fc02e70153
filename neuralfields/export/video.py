"""Render camera paths to videos (H.264 mp4, GIF) or PNG frame folders.

Pipeline: :class:`~neuralfields.camera_paths.CameraPath` -> :func:`render_path` (one frame at
a time, chunked rays, so memory stays bounded) -> per-output visualisation (``VISUALIZERS``) ->
:func:`compose` (side by side, or one stream per output) -> a frame writer chosen by the output
name (``WRITERS``).

Outputs:

* ``rgb``: the colour over the run's background;
* ``depth``: ray distance through a colour map over one fixed range for the whole video (near =
  low end of the map), faded to black where the ray hits nothing; a legend bar with the range is
  drawn on frames of at least 96x96 and the range is written to the render's JSON;
* ``normal``: world-space unit normals from the density gradient, shown as ``(n + 1) / 2``;
* ``opacity``: accumulated opacity in grey.

MP4 files use libx264 with yuv420p (what browsers play); yuv420p needs even sizes, so an odd
width or height is padded by one copied pixel column/row.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from ..camera_paths import CameraPath, PathSettings, make_path, with_size
from ..errors import NeuralFieldsError
from ..scene_model import RENDER_OUTPUTS
from .colormap import COLORMAPS, apply_colormap, draw_legend


@dataclass
class VisualStyle:
    """How scalar and vector buffers become pictures."""

    depth_range: tuple[float, float] | None = None  # None: estimated once per video
    colormap: str = "turbo"
    legend: bool = True


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def _show_rgb(buffers: dict[str, Tensor], style: VisualStyle) -> np.ndarray:
    return _to_uint8(buffers["rgb"].numpy())


def _show_depth(buffers: dict[str, Tensor], style: VisualStyle) -> np.ndarray:
    lo, hi = style.depth_range or (0.0, 1.0)
    depth, opacity = buffers["depth"].numpy(), buffers["opacity"].numpy()
    colour = apply_colormap((depth - lo) / max(hi - lo, 1e-9), style.colormap) * opacity[..., None]
    image = _to_uint8(colour)
    return draw_legend(image, lo, hi, style.colormap) if style.legend else image


def _show_normal(buffers: dict[str, Tensor], style: VisualStyle) -> np.ndarray:
    n, opacity = buffers["normal"].numpy(), buffers["opacity"].numpy()
    return _to_uint8((n + 1) * 0.5 * opacity[..., None])


def _show_opacity(buffers: dict[str, Tensor], style: VisualStyle) -> np.ndarray:
    return _to_uint8(np.repeat(buffers["opacity"].numpy()[..., None], 3, -1))


@dataclass
class Visualizer:
    needs: tuple[str, ...]  # renderer buffers this picture reads
    show: Callable[[dict[str, Tensor], VisualStyle], np.ndarray]


VISUALIZERS: dict[str, Visualizer] = {
    "rgb": Visualizer(("rgb",), _show_rgb),
    "depth": Visualizer(("depth", "opacity"), _show_depth),
    "normal": Visualizer(("normal", "opacity"), _show_normal),
    "opacity": Visualizer(("opacity",), _show_opacity),
}


def parse_outputs(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"rgb,depth"`` -> ``("rgb", "depth")``, checked against :data:`VISUALIZERS`."""
    names = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in VISUALIZERS]
    if unknown or not names:
        raise NeuralFieldsError(f"--outputs: unknown output(s) {', '.join(unknown) or '(none given)'}; "
                                f"choose from {', '.join(VISUALIZERS)}")
    if len(set(names)) != len(names):
        raise NeuralFieldsError(f"--outputs: '{text}' names an output twice")
    return tuple(names)


def _buffers_needed(outputs: Sequence[str]) -> tuple[str, ...]:
    needed = {b for o in outputs for b in VISUALIZERS[o].needs}
    return tuple(b for b in RENDER_OUTPUTS if b in needed)


def render_buffers(model, cameras, index: int, time_value: float | None, buffers: Sequence[str],
                   chunk: int | None = None) -> dict[str, Tensor]:
    """Raw buffers of one camera (see ``SceneModel.render_camera``)."""
    return model.render_camera(cameras, index, time_value, outputs=buffers, chunk=chunk)


def estimate_depth_range(model, path: CameraPath, samples: int = 4, max_side: int = 64) -> tuple[float, float]:
    """One depth range for a whole video: 2nd-98th percentile of covered pixels' depth.

    Measured on ``samples`` frames spread over the path, rendered at most ``max_side`` pixels
    wide: a per-frame range would make the colours flicker.
    """
    scale = min(1.0, max_side / max(path.width, path.height))
    small = with_size(path, max(1, round(path.width * scale)), max(1, round(path.height * scale)))
    values = []
    for i in np.linspace(0, len(path) - 1, min(samples, len(path))).round().astype(int):
        out = render_buffers(model, small.cameras, int(i), path.time(int(i)), ("depth", "opacity"))
        values.append(out["depth"][out["opacity"] > 0.5])
    depth = torch.cat(values) if values else torch.zeros(0)
    if depth.numel() < 2:
        return 0.0, 1.0
    lo, hi = torch.quantile(depth.float(), torch.tensor([0.02, 0.98])).tolist()
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def render_path(model, path: CameraPath | str | Path, outputs: Sequence[str] = ("rgb",),
                settings: PathSettings | None = None, style: VisualStyle | None = None, progress: bool = True,
                chunk: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Render a camera path frame by frame.

    Args:
        model: a loaded ``SceneModel``.
        path: a :class:`CameraPath`, or a spec for :func:`~neuralfields.camera_paths.make_path`
            (``orbit``, ``spiral``, ``interpolate`` or a JSON file) with ``settings``.
        outputs: names from :data:`VISUALIZERS`.
        style: depth range and colour map; a missing depth range is estimated and stored in it.
    Yields:
        per frame, ``{output: uint8 [H, W, 3]}``.
    """
    if not isinstance(path, CameraPath):
        path = make_path(path, model.info, settings)
    outputs = parse_outputs(outputs)
    style = style or VisualStyle()
    if style.colormap not in COLORMAPS:
        raise NeuralFieldsError(f"--colormap: unknown map '{style.colormap}'; choose from {', '.join(COLORMAPS)}")
    if "depth" in outputs and style.depth_range is None:
        style.depth_range = estimate_depth_range(model, path)
    needed = _buffers_needed(outputs)
    bar = tqdm(total=len(path), desc="render", unit="frame", disable=not progress, dynamic_ncols=True)
    try:
        for i in range(len(path)):
            buffers = render_buffers(model, path.cameras, i, path.time(i), needed, chunk)
            yield {name: VISUALIZERS[name].show(buffers, style) for name in outputs}
            bar.update(1)
    finally:
        bar.close()


LAYOUTS = ("side-by-side", "separate")


def compose(images: dict[str, np.ndarray], layout: str = "side-by-side") -> dict[str, np.ndarray]:
    """Arrange one frame's pictures: ``{"": all side by side}`` or ``{output: picture}``."""
    if layout == "side-by-side":
        return {"": np.concatenate(list(images.values()), axis=1)}
    if layout == "separate":
        return dict(images)
    raise NeuralFieldsError(f"--layout: unknown layout '{layout}'; choose from {', '.join(LAYOUTS)}")


# ------------------------------------------------------------------------------------ writers


def pad_even(frame: np.ndarray) -> np.ndarray:
    """Pad ``[H, W, 3]`` to even sizes by copying the last row/column (yuv420p needs them)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class Mp4Writer:
    """H.264 in an MP4 container, yuv420p, moov atom first (streams in browsers)."""

    def __init__(self, out: Path, fps: float, quality: int = 18):
        import imageio.v2 as imageio

        out.parent.mkdir(parents=True, exist_ok=True)
        # macro_block_size=1: imageio would otherwise resize to multiples of 16.
        self.writer = imageio.get_writer(str(out), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                         pixelformat="yuv420p", macro_block_size=1, quality=None,
                                         ffmpeg_params=["-crf", str(quality), "-movflags", "+faststart"],
                                         ffmpeg_log_level="error")

    def append(self, frame: np.ndarray) -> None:
        self.writer.append_data(pad_even(frame))

    def close(self) -> None:
        self.writer.close()


class GifWriter:
    """Animated GIF (palette per frame); frames are kept in memory as 8-bit palette images."""

    def __init__(self, out: Path, fps: float):
        self.out, self.fps, self.frames = out, fps, []

    def append(self, frame: np.ndarray) -> None:
        self.frames.append(Image.fromarray(frame).quantize(256))

    def close(self) -> None:
        if self.frames:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.frames[0].save(self.out, save_all=True, append_images=self.frames[1:], loop=0,
                                duration=max(20, int(round(1000 / self.fps))))


class PngWriter:
    """A folder of ``frame_00000.png`` files."""

    def __init__(self, out: Path, fps: float):
        self.out, self.count = out, 0
        out.mkdir(parents=True, exist_ok=True)

    def append(self, frame: np.ndarray) -> None:
        Image.fromarray(frame).save(self.out / f"frame_{self.count:05d}.png")
        self.count += 1

    def close(self) -> None:
        pass


WRITERS: dict[str, Callable[[Path, float], object]] = {".mp4": Mp4Writer, ".gif": GifWriter, "": PngWriter}


def writer_kind(out: Path) -> str:
    """``.mp4``, ``.gif`` or ``""`` (a folder of PNG frames: no suffix, or an existing folder)."""
    if out.is_dir() or out.suffix == "":
        return ""
    suffix = out.suffix.lower()
    if suffix not in WRITERS:
        raise NeuralFieldsError(f"--out {out}: unsupported video type '{suffix}'; use .mp4, .gif or a folder for PNG frames")
    return suffix


def open_writer(out: Path, fps: float):
    return WRITERS[writer_kind(out)](out, fps)


def write_video(frames: Iterable[np.ndarray], out: str | Path, fps: float = 30.0) -> Path:
    """Write uint8 ``[H, W, 3]`` frames to ``out`` (.mp4, .gif or a folder of PNGs); returns ``out``."""
    out = Path(out)
    writer = open_writer(out, fps)
    try:
        for frame in frames:
            writer.append(frame)
    finally:
        writer.close()
    return out


def stream_name(out: Path, output: str) -> Path:
    """Where one output goes with the ``separate`` layout: ``video_depth.mp4`` or ``frames/depth/``."""
    if not output:
        return out
    if writer_kind(out) == "":
        return out / output
    return out.with_name(f"{out.stem}_{output}{out.suffix}")


def metadata_path(out: Path) -> Path:
    return out / "render.json" if writer_kind(out) == "" else out.with_suffix(".json")


def render_video(model, path: CameraPath, out: str | Path, outputs: Sequence[str] = ("rgb",),
                 layout: str = "side-by-side", style: VisualStyle | None = None, progress: bool = True,
                 chunk: int | None = None, extra: dict | None = None) -> dict:
    """Render ``path`` and write it to ``out``; writes and returns a JSON summary beside it.

    The summary (``video.json`` beside ``video.mp4``, ``render.json`` inside a frame folder)
    holds the path (frames, fps, size, time range), the files written, and for depth the range
    and colour map, so the colours can be read back as distances.
    """
    out = Path(out)
    outputs = parse_outputs(outputs)
    if layout not in LAYOUTS:
        raise NeuralFieldsError(f"--layout: unknown layout '{layout}'; choose from {', '.join(LAYOUTS)}")
    writer_kind(out)  # reject unsupported suffixes before rendering anything
    style = style or VisualStyle()
    names = [""] if layout == "side-by-side" else list(outputs)
    writers = {name: open_writer(stream_name(out, name), path.fps) for name in names}
    start = time.perf_counter()
    shape, first = None, None
    try:
        for images in render_path(model, path, outputs, style=style, progress=progress, chunk=chunk):
            for name, frame in compose(images, layout).items():
                shape = frame.shape
                writers[name].append(frame)
            if first is None:
                first = time.perf_counter() - start
    finally:
        for w in writers.values():
            w.close()
    seconds = time.perf_counter() - start
    summary = {
        "path": path.describe(), "outputs": list(outputs), "layout": layout,
        "files": [str(stream_name(out, n)) for n in names],
        "frame_size": None if shape is None else [int(shape[1]), int(shape[0])],
        "render_seconds": round(seconds, 3), "frames_per_second": round(len(path) / max(seconds, 1e-9), 4),
        # The first frame also pays one-off work (torch.compile of the baked sampler, on the CPU),
        # which a process that rendered before (the viewer) has already done.
        "first_frame_seconds": None if first is None else round(first, 3),
        "torch_threads": torch.get_num_threads(),
    }
    if "depth" in outputs:
        summary["depth"] = {"range": list(style.depth_range), "colormap": style.colormap,
                            "meaning": "ray distance in world units; range[0] maps to the low end of the colour map"}
    if "normal" in outputs:
        summary["normal"] = {"space": "world", "encoding": "rgb = (n + 1) / 2"}
    summary.update(extra or {})
    meta = metadata_path(out)
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
