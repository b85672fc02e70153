"""Videos: frames ``[T, H, W, C]`` at coordinates ``(x, y, t)`` in ``[-1, 1]^3``.

Read from a video file (``.mp4`` and other ffmpeg formats through imageio-ffmpeg, ``.gif``
through Pillow) or a folder of frames (image files in name order, all one size); ``--frames N``
keeps the first N frames and ``--size P`` resizes frames to P pixels on their longest side.
Scored by PSNR over the whole clip and SSIM averaged over frames; written as
``reconstruction.mp4``, ``comparison.mp4`` (original | fit | error heat map, H.264) and
``comparison.png`` (the middle frame of it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
from torch import Tensor

from ...compiling import first_line
from ...errors import NeuralFieldsError, file_error
from ...run.metrics import psnr, ssim
from ..io import collapse_grey, read_signal_image, resize_longest, save_image
from .base import ReadOptions, Signal, check_size, register_signal, require
from .image import ImageSignal, side_by_side

FOLDER_FPS = 25.0  # frames per second of a folder of frames (it has no clock of its own)


def as_float(frame: np.ndarray) -> np.ndarray:
    """A decoded frame ``[H, W, C]`` (integers, alpha dropped) as float32 RGB or grey in ``[0, 1]``."""
    frame = frame[..., None] if frame.ndim == 2 else frame
    frame = frame[..., :3] if frame.shape[-1] >= 3 else frame[..., :1]
    if frame.dtype.kind in "ui":
        return frame.astype(np.float32) / np.iinfo(frame.dtype).max
    return np.clip(frame.astype(np.float32), 0, 1)


class FrameSource:
    """The frames of a video file or a folder, decoded one at a time: ``fps``, an estimate of the
    frame count and size (for the memory check before decoding), and an iterator of frames."""

    def __init__(self, path: Path):
        self.path = path
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in ImageSignal.suffixes)
            if not files:
                raise file_error(path, f"folder holds no frames (image files: {', '.join(ImageSignal.suffixes)})")
            self.files, self.fps, self.length = files, FOLDER_FPS, len(files)
            self.size = read_signal_image(files[0]).shape[:2]
            return
        require(path, ("imageio", "imageio_ffmpeg"), "video")
        import imageio.v2 as imageio

        self.files = None
        try:
            self.reader = imageio.get_reader(str(path))
            meta = self.reader.get_meta_data()
            first = self.reader.get_data(0)
        except Exception as exc:  # imageio and ffmpeg raise many kinds for a bad file
            raise file_error(path, f"cannot read video ({first_line(exc)})") from None
        self.size = first.shape[:2]
        self.fps = float(meta.get("fps") or 1000.0 / max(float(meta.get("duration") or 40.0), 1.0))
        length = self.reader.get_length()
        if not np.isfinite(length):  # ffmpeg counts frames only by decoding them: estimate from the duration
            length = round(float(meta.get("duration") or 0.0) * self.fps) or 1
        self.length = int(length)

    def frames(self, limit: int | None) -> Iterator[np.ndarray]:
        count = 0
        if self.files is not None:
            for file in self.files[:limit]:
                yield read_signal_image(file)
            return
        try:
            for frame in self.reader:
                if limit is not None and count >= limit:
                    break
                yield as_float(frame)
                count += 1
        except Exception as exc:
            raise file_error(self.path, f"cannot decode video frame {count} ({first_line(exc)})") from None
        finally:
            self.reader.close()


def resized_shape(size: tuple[int, int], longest: int | None) -> tuple[int, int]:
    """``(H, W)`` after :func:`~neuralfields.fit.io.resize_longest` to ``longest`` pixels."""
    h, w = size
    if not longest or max(h, w) <= longest:
        return h, w
    scale = longest / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` in ``[0, 1]`` (C = 1 or 3) -> ``[H, W, 3]`` uint8."""
    frame = np.repeat(frame, 3, axis=-1) if frame.shape[-1] == 1 else frame
    return (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)


@register_signal
class VideoSignal(Signal):
    """A clip ``[T, H, W, C]`` in ``[0, 1]`` played at ``fps`` frames per second."""

    kind = "video"
    suffixes = (".mp4", ".gif", ".mov", ".avi", ".mkv", ".webm")
    folders = True
    uses = frozenset({"frames", "size"})
    subsample_hint = "--frames N keeps the first N frames, --size P resizes frames to P pixels on their longest side"

    def __init__(self, values: np.ndarray, fps: float, source: str = ""):
        super().__init__(values, source)
        self.fps = fps

    @classmethod
    def read(cls, path: Path, options: ReadOptions) -> "VideoSignal":
        source = FrameSource(path)
        h, w = resized_shape(source.size, options.size)
        frames = min(source.length, options.frames or source.length)
        what = f"video of {frames} frames of {w}x{h}"
        check_size(path, cls, frames * h * w, 3, options.max_samples, what)  # before decoding it
        clip = []
        for frame in source.frames(options.frames):
            frame = resize_longest(frame, options.size) if options.size else frame
            if clip and frame.shape != clip[0].shape:
                raise file_error(path, f"frame {len(clip)} is {frame.shape[1]}x{frame.shape[0]}, "
                                       f"the first {clip[0].shape[1]}x{clip[0].shape[0]}: frames must share one size")
            clip.append(frame)
            if len(clip) * h * w > options.max_samples:  # the estimate was short
                check_size(path, cls, len(clip) * h * w, 3, options.max_samples, f"video of {len(clip)}+ frames of {w}x{h}")
        if len(clip) < 2:
            raise file_error(path, f"video too short to fit ({len(clip)} frame{'s' if len(clip) != 1 else ''})")
        return cls(collapse_grey(np.stack(clip)), source.fps, str(path))

    def field_defaults(self, field: str) -> dict:
        # The hash grid's finest level at the sample spacing: finer levels would only hash.
        return {"ngp": {"max_res": max(self.grid)}}.get(field, {})

    def metrics(self, pred: Tensor) -> dict:
        clip = pred.reshape(self.values.shape)
        frames = [ssim(clip[i], self.values[i]) for i in range(clip.shape[0])]
        return {"psnr": psnr(clip, self.values), "ssim": float(np.mean(frames))}

    def write(self, pred: Tensor, out_dir: Path) -> dict[str, Path]:
        from ...export.video import write_video

        recon, target = self.reconstruction(pred), self.values.numpy()
        paths = {"reconstruction": out_dir / "reconstruction.mp4", "comparison": out_dir / "comparison.mp4",
                 "frame": out_dir / "comparison.png"}
        try:
            write_video((to_uint8(frame) for frame in recon), paths["reconstruction"], self.fps)
            write_video((to_uint8(side_by_side(t, r)) for t, r in zip(target, recon)), paths["comparison"], self.fps)
        except (OSError, RuntimeError) as exc:
            raise NeuralFieldsError(f"{out_dir}: cannot write MP4 video ({first_line(exc)}); "
                                    "install imageio-ffmpeg (pip install 'neuralfields[video]')") from None
        middle = len(recon) // 2
        save_image(paths["frame"], side_by_side(target[middle], recon[middle]))
        return paths

    def record(self) -> dict:
        t, h, w = self.grid
        return {"kind": self.kind, "frames": t, "height": h, "width": w, "channels": self.out_dim, "fps": self.fps}

    def describe(self) -> str:
        t, h, w = self.grid
        return f"video: {self.source} ({t} frames of {w}x{h} at {self.fps:g} fps, {self.out_dim} channels)"
