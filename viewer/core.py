"""What every page handler shares: limits (:class:`ViewerConfig`), value checks, output files,
one-line page errors (and one line in the server's terminal for each refusal), and :class:`Viewer`
(runs, files and the lock around model evaluation)."""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

import gradio as gr
import numpy as np

from neuralfields.bake import BakeConfig
from neuralfields.camera_paths import CameraPath
from neuralfields.errors import NeuralFieldsError
from neuralfields.export.video import VISUALIZERS, VisualStyle, render_path

from .navigation import check_number
from .runs import LoadedRun, RunLibrary

log = logging.getLogger("neuralfields.viewer")

MIN_SIDE = 16


@dataclass
class ViewerConfig:
    """Limits and defaults of one viewer; the CLI sets ``max_resolution``, ``threads`` and ``device``."""

    max_resolution: int = 1024  # longest image side in pixels (views and videos); larger requests are refused
    default_resolution: int = 256
    preview_side: int = 64  # coarse frames: first pass of large views, frames while the mouse moves, path previews
    max_video_frames: int = 240
    mesh_resolution: int = 128  # marching-cubes samples along the longest box side
    max_mesh_resolution: int = 384
    mesh_faces: int = 300_000  # meshes are simplified to about this many faces so the browser stays smooth
    splat_steps: int = 300  # "Make splats" distils this many steps: a preview (the CLI's default is 3000)
    splat_resolution: int = 128  # longest side of the views it distils on
    cached_runs: int = 2  # loaded models kept in memory
    queue_size: int = 16  # requests waiting for the server at most; more get "queue is full"
    sessions: int = 256  # browser sessions whose newest navigation request is remembered
    output_dir: str | None = None  # frames, videos and meshes for the page; None: a fresh temporary folder
    keep_files: int = 64  # older files in output_dir are deleted
    threads: int | None = None  # torch CPU threads for the server process; None keeps torch's default
    device: str = "cpu"  # where models render (the CLI resolves --device auto to a concrete device)
    exact: bool = False  # views and videos with the live field instead of the run's bake (made on first load)
    bake: BakeConfig | None = None  # settings of the bakes the viewer makes; None: the defaults (`neuralfields bake`'s)

    def resolved(self) -> "ViewerConfig":
        """A copy whose ``output_dir`` exists (created in the temporary folder when unset)."""
        folder = self.output_dir or tempfile.mkdtemp(prefix="neuralfields-viewer-")
        Path(folder).mkdir(parents=True, exist_ok=True)
        return replace(self, output_dir=str(folder))


class OutputFiles:
    """Uniquely named files in one folder; the oldest beyond ``keep`` are removed as new ones come."""

    def __init__(self, folder: str | Path, keep: int):
        self.folder, self.keep = Path(folder), keep
        self._lock = threading.Lock()

    def new(self, stem: str, suffix: str) -> Path:
        with self._lock:
            files = sorted((p for p in self.folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
            for old in files[: max(0, len(files) - self.keep + 1)]:
                old.unlink(missing_ok=True)
        return self.folder / f"{stem}-{uuid.uuid4().hex[:10]}{suffix}"


@dataclass
class Viewer:
    """State shared by the handlers of one page.

    ``lock`` serialises model evaluation: views, videos and exports run in separate queues and
    take turns frame by frame, so a long video never holds a view back for more than one frame.
    """

    cfg: ViewerConfig
    library: RunLibrary
    files: OutputFiles
    lock: threading.RLock = field(default_factory=threading.RLock)

    def locked(self, frames: Iterable) -> Iterator:
        """``frames`` with the model lock held only while each item is produced."""
        it = iter(frames)
        while True:
            with self.lock:
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item


# ------------------------------------------------------------------------------------ checks


def check_side(side, cfg: ViewerConfig, what: str = "resolution") -> int:
    try:
        value = float(side)
    except (TypeError, ValueError):
        raise NeuralFieldsError(f"{what}: expected a number of pixels, got {side!r}") from None
    if not np.isfinite(value) or value < MIN_SIDE:
        raise NeuralFieldsError(f"{what}: expected at least {MIN_SIDE} pixels, got {side}")
    if value > cfg.max_resolution:
        raise NeuralFieldsError(f"{what}: {int(value)} px exceeds this viewer's maximum of {cfg.max_resolution} px "
                                "(restart it with a larger --max-resolution)")
    return int(round(value))


def check_output(output) -> str:
    if output not in VISUALIZERS:
        raise NeuralFieldsError(f"unknown output '{output}'; choose from {', '.join(VISUALIZERS)}")
    return output


def check_frames(seconds, fps, cfg: ViewerConfig) -> tuple[float, float, int]:
    """``(seconds, fps, frames)`` of a video request within the viewer's frame limit."""
    seconds = check_number(seconds, "seconds", 0.1, 60.0)
    fps = check_number(fps, "frames per second", 1.0, 60.0)
    frames = int(round(seconds * fps))
    if frames > cfg.max_video_frames:
        raise NeuralFieldsError(f"{frames} frames exceed this viewer's limit of {cfg.max_video_frames}; "
                                "shorten the video or lower the frame rate")
    return seconds, fps, frames


def view_time(run: LoadedRun, value) -> float | None:
    """Static fields ignore time; dynamic ones take the slider's value in [0, 1]."""
    if not run.dynamic:
        return None
    return check_number(0.0 if value is None else value, "time", 0.0, 1.0)


def fit_size(width: int, height: int, side: int) -> tuple[int, int]:
    """``(w, h)`` with the aspect of ``width x height`` and ``side`` pixels along the longer edge."""
    if width >= height:
        return side, max(1, round(side * height / width))
    return max(1, round(side * width / height)), side


def run_size(run: LoadedRun, side: int) -> tuple[int, int]:
    """Frame size with the training images' aspect and ``side`` pixels along the longer edge."""
    cams = run.model.info.cameras
    return fit_size(int(cams.width[0]), int(cams.height[0]), side)


def render_picture(run: LoadedRun, path: CameraPath, output: str, style: VisualStyle) -> np.ndarray:
    """``uint8 [H, W, 3]`` of the path's single frame, coloured by the export layer."""
    return next(iter(render_path(run.view_model, path, (output,), style=style, progress=False)))[output]


# ------------------------------------------------------------------------------------ errors


class _TerminalHandler(logging.StreamHandler):
    """Lines to whatever ``sys.stderr`` is when they are written (a stream fixed at start would
    miss a redirection made later)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def log_to_terminal() -> None:
    """Show the viewer's log lines (baking, refusals, crashes) in the server's terminal, once per process."""
    if not any(isinstance(h, _TerminalHandler) for h in log.handlers):
        handler = _TerminalHandler()
        handler.setFormatter(logging.Formatter("viewer: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def page_errors(fn):
    """Turn exceptions into one-line page messages (``gr.Error``).

    A refusal (:class:`NeuralFieldsError`: a bad value, a limit) is one line in the server log;
    anything else is a crash, whose traceback goes to the server log (never to the page)."""

    def message(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        what = fn.__name__.replace("_", " ")
        if isinstance(exc, NeuralFieldsError):
            log.info("%s refused: %s", what, exc)
            return gr.Error(str(exc), print_exception=False)
        log.exception("%s failed", what)
        first = (str(exc).strip().splitlines() or [""])[0]
        return gr.Error(f"{what} failed: {type(exc).__name__}: {first}", print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                raise message(exc) from None
        return generator

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise message(exc) from None
    return plain


class ViewerBlocks(gr.Blocks):
    """The page's Blocks: a ``gr.Error`` that would print its traceback is a refusal and prints one line.

    Gradio prints the traceback of every ``gr.Error`` raised with ``print_exception`` (its default),
    its own input checks included (a slider value beyond the slider's maximum, a choice not in a
    dropdown), before a handler and :func:`page_errors` see the request.
    """

    async def process_api(self, block_fn, *args, **kwargs):
        try:
            return await super().process_api(block_fn, *args, **kwargs)
        except gr.Error as exc:
            if exc.print_exception:
                exc.print_exception = False
                fn = self.fns[block_fn] if isinstance(block_fn, int) else block_fn
                name = getattr(fn, "api_name", None) or getattr(fn, "name", "request")
                log.info("%s refused: %s", str(name).replace("_", " "), exc.message)
            raise
