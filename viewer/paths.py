"""The camera-path editor: keyframes from the current view, their order, previews, files and videos.

Keyframes are orbit views (:class:`~viewer.navigation.OrbitView`, plus a time for dynamic runs)
kept per browser in a ``gr.State`` list of dicts. Saving converts them to camera-to-world poses
and writes two files with the library's writers: ours (``save_keyframes``: keyframes that the
reader interpolates, a spline on positions and slerp on rotations) and nerfstudio's
(``save_nerfstudio``: every interpolated frame). Previews and videos render the path read back
from our file by ``load_path_file``, the reader ``neuralfields render --path`` uses, so the page
shows exactly what the command line renders.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neuralfields.atomic import atomic_path
from neuralfields.camera_paths import CameraPath, load_path_file, save_keyframes, save_nerfstudio, with_size
from neuralfields.errors import NeuralFieldsError
from neuralfields.export.video import VisualStyle, render_path, write_video

from .core import LoadedRun, Viewer, check_frames, check_output, check_side, run_size, view_time
from .navigation import OrbitView, format_target, view_pose

COLUMNS = ["#", "azimuth", "elevation", "distance", "fov", "target", "time"]
MAX_KEYFRAMES = 64


@dataclass
class PathFiles:
    """The two files of a saved path and the command that renders the first one."""

    ours: Path
    nerfstudio: Path
    command: str


def keyframe(run: LoadedRun, azimuth, elevation, distance, fov, target, time_value) -> dict:
    """The current view as a keyframe dict (values checked like a render request)."""
    view = OrbitView.checked(azimuth, elevation, distance, fov, target)
    return {**asdict(view), "target": list(view.target), "time": view_time(run, time_value)}


def table(keys: list[dict]) -> list[list]:
    """Rows for the keyframe table (``COLUMNS``)."""
    return [[i, round(k["azimuth"], 2), round(k["elevation"], 2), round(k["distance"], 3), round(k["fov"], 2),
             format_target(k["target"]), "" if k["time"] is None else round(k["time"], 3)] for i, k in enumerate(keys)]


def check_index(keys: list[dict], index) -> int:
    if not keys:
        raise NeuralFieldsError("no keyframes yet: add the current view first")
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise NeuralFieldsError(f"keyframe: expected an index, got {index!r}") from None
    if i != index or not 0 <= i < len(keys):
        raise NeuralFieldsError(f"keyframe: index must be an integer in [0, {len(keys) - 1}], got {index}")
    return i


def moved(keys: list[dict], index, step: int) -> tuple[list[dict], int]:
    """``keys`` with keyframe ``index`` moved ``step`` places (clamped at the ends), and its new index."""
    i = check_index(keys, index)
    j = min(max(i + step, 0), len(keys) - 1)
    out = list(keys)
    out.insert(j, out.pop(i))
    return out, j


def move_keyframe_up(keys: list[dict], index) -> tuple[list[dict], int]:
    return moved(keys, index, -1)


def move_keyframe_down(keys: list[dict], index) -> tuple[list[dict], int]:
    return moved(keys, index, +1)


def delete_keyframe(keys: list[dict], index) -> tuple[list[dict], int]:
    i = check_index(keys, index)
    out = keys[:i] + keys[i + 1:]
    return out, max(0, min(i, len(out) - 1))


EDITS = (move_keyframe_up, move_keyframe_down, delete_keyframe)  # (keys, index) -> (keys, selected index)


def check_keys(keys: list[dict]) -> list[OrbitView]:
    if len(keys) < 2:
        raise NeuralFieldsError(f"a path needs at least 2 keyframes, got {len(keys)}")
    return [OrbitView.checked(k["azimuth"], k["elevation"], k["distance"], k["fov"], tuple(k["target"])) for k in keys]


def write_path(viewer: Viewer, run: LoadedRun, keys: list[dict], seconds, fps, resolution, loop: bool,
               output: str) -> PathFiles:
    """Save ``keys`` in our format and nerfstudio's; both files are written whole or not at all."""
    views = check_keys(keys)
    seconds, fps, _ = check_frames(seconds, fps, viewer.cfg)
    w, h = run_size(run, check_side(resolution, viewer.cfg, "path resolution"))
    c2w = np.stack([view_pose(run.frame, v) for v in views])
    times = [k["time"] for k in keys] if run.dynamic else None
    if times is not None and any(t is None for t in times):
        raise NeuralFieldsError("every keyframe of a dynamic run needs a time")
    ours = viewer.files.new("keyframes", ".json")
    with atomic_path(ours) as tmp:
        save_keyframes(tmp, c2w, [v.fov for v in views], w, h, fps=fps, seconds=seconds, times=times, loop=bool(loop))
    nerfstudio = save_nerfstudio(viewer.files.new("nerfstudio", ".json"), read_path(run, ours))
    args = ["neuralfields", "render", str(run.path), "--path", ours.name, "--out", "path.mp4"]
    if output != "rgb":
        args += ["--outputs", output]
    if viewer.cfg.exact:  # the viewer renders the live field: so must the command, for the same frames
        args.append("--exact")
    if viewer.cfg.threads is not None:  # the viewer's thread count, so the command renders as fast
        args += ["--threads", str(viewer.cfg.threads)]
    return PathFiles(ours, nerfstudio, shlex.join(args))


def read_path(run: LoadedRun, file: Path) -> CameraPath:
    """The path as ``neuralfields render --path FILE`` reads it."""
    return load_path_file(file, run.model.info)


def render_file(viewer: Viewer, run: LoadedRun, path: CameraPath, output: str, stem: str,
                progress=None) -> tuple[Path, float]:
    """mp4 of ``path`` (frames interleaved with other requests), its render time; ``progress(done, total)``."""
    output = check_output(output)
    out = viewer.files.new(stem, ".mp4")
    style = VisualStyle()
    start = time.perf_counter()

    def frames():
        for i, images in enumerate(viewer.locked(render_path(run.view_model, path, (output,), style=style,
                                                             progress=False))):
            if progress is not None:
                progress(i + 1, len(path))
            yield images[output]

    write_video(frames(), out, path.fps)
    return out, time.perf_counter() - start


def preview_path(viewer: Viewer, run: LoadedRun, files: PathFiles, output: str) -> tuple[Path, str]:
    """A low-resolution mp4 of the saved path (the viewer's preview side), and a status line."""
    path = read_path(run, files.ours)
    w, h = run_size(run, viewer.cfg.preview_side)
    small = with_size(path, w, h)
    out, seconds = render_file(viewer, run, small, output, "path-preview")
    return out, f"preview: {len(small)} frames of {w}x{h} in {seconds:.1f} s"
