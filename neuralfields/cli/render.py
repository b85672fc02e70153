"""``neuralfields render``: a video (or frames) of a trained run along a camera path."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from ..camera_paths import PATH_KINDS, PathSettings, default_path, make_path
from ..errors import NeuralFieldsError
from ..threads import torch_threads
from .common import add_device_argument, add_threads_argument, device_from, require_run, run_dir, threads_from


# Flags are parsed in the handler, not by argparse types: a bad value then gets the project's
# one-line error (exit 2) instead of argparse's usage dump.


def number_flag(text: str | None, flag: str, kind: type = float, low: float | None = 0.0, high: float | None = None,
                inclusive: bool = False):
    """Parse ``text`` as ``kind``; ``low`` is exclusive unless ``inclusive`` (None = unbounded)."""
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise NeuralFieldsError(f"{flag}: expected {'an integer' if kind is int else 'a number'}, got '{text}'") from None
    if value != value or (low is not None and (value < low if inclusive else value <= low)) or \
            (high is not None and value > high):
        bounds = f"[{low}, {high}]" if high is not None else f"{'>=' if inclusive else '>'} {low}"
        raise NeuralFieldsError(f"{flag}: expected a value {bounds}, got {text}")
    return value


def resolution_flag(text: str | None) -> tuple[int, int] | None:
    """``WxH`` -> (W, H); sizes are checked against the path limits later."""
    if text is None:
        return None
    try:
        w, h = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise NeuralFieldsError(f"--resolution: expected WIDTHxHEIGHT such as 640x480, got '{text}'") from None
    return w, h


def range_flag(text: str | None, flag: str, unit: bool = False) -> tuple[float, float] | None:
    """``A:B`` (or ``A`` alone for ``A:A``); ``unit`` requires values in [0, 1]."""
    if text is None:
        return None
    try:
        values = [float(p) for p in text.split(":")]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise NeuralFieldsError(f"{flag}: expected A:B or A, got '{text}'")
    if unit and not all(0.0 <= v <= 1.0 for v in values):
        raise NeuralFieldsError(f"{flag}: times must lie in [0, 1], got '{text}'")
    return values[0], values[1]


def register(sub) -> None:
    p = sub.add_parser("render", help="render a video of a trained run along a camera path",
                       description="Render a camera path to an H.264 mp4, a GIF or a folder of PNG frames "
                                   "(chosen by --out: .mp4, .gif, or a folder). A JSON summary is written beside it.")
    p.add_argument("run", type=run_dir, help="run folder")
    p.add_argument("--path",
                   help=f"{', '.join(PATH_KINDS)} (derived from the training cameras) or a camera path JSON file "
                        "(ours or nerfstudio's camera_path.json; see docs/camera_paths.md); default: spiral for "
                        "forward-facing captures, orbit otherwise")
    p.add_argument("--seconds", help="video length (default 4, or the file's)")
    p.add_argument("--fps", help="frames per second (default 30, or the file's)")
    p.add_argument("--resolution", metavar="WxH", help="frame size (default: training image size)")
    p.add_argument("--downscale", help="training (or file) image size divided by N (instead of --resolution)")
    p.add_argument("--fov", help="vertical field of view in degrees (default: training cameras')")
    p.add_argument("--outputs", default="rgb", help="comma-separated: rgb, depth, normal, opacity (default rgb)")
    p.add_argument("--layout", default="side-by-side",
                   help="side-by-side (several outputs in one frame) or separate (one video per output: NAME_depth.mp4 ...)")
    p.add_argument("--time", metavar="T0:T1",
                   help="time sweep over the frames for dynamic runs (default 0:1); T alone holds one time")
    p.add_argument("--turns", default="1", help="revolutions of orbit/spiral paths")
    p.add_argument("--depth-range", metavar="NEAR:FAR", help="fixed depth colour range (default: estimated from a few frames)")
    p.add_argument("--colormap", default="turbo", help="depth colour map: turbo, viridis, gray")
    p.add_argument("--out", required=True, help="video.mp4, video.gif, or a folder for PNG frames")
    p.add_argument("--exact", action="store_true",
                   help="render with the live field instead of the run's bake (which is made on first use)")
    p.add_argument("--baked", type=Path, metavar="FILE", help="render with this bake file (it must match the checkpoint)")
    p.add_argument("--no-progress", action="store_true")
    add_threads_argument(p)
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    threads = threads_from(args)  # checked before anything loads
    # Restored afterwards: main() may run inside a longer process (tests, scripts).
    with torch_threads(threads):
        return render_run(args)


def render_run(args: argparse.Namespace) -> int:
    from ..bake import fast_model
    from ..export.video import LAYOUTS, VisualStyle, parse_outputs, render_video, writer_kind
    from ..scene_model import load_model

    out = Path(args.out)
    outputs = parse_outputs(args.outputs)
    writer_kind(out)
    if args.layout not in LAYOUTS:
        raise NeuralFieldsError(f"--layout: unknown layout '{args.layout}'; choose from {', '.join(LAYOUTS)}")
    if args.resolution and args.downscale:
        raise NeuralFieldsError("--resolution and --downscale exclude each other; give one")
    depth_range = range_flag(args.depth_range, "--depth-range")
    if depth_range is not None and not depth_range[1] > depth_range[0]:
        raise NeuralFieldsError(f"--depth-range: expected NEAR < FAR, got '{args.depth_range}'")
    w, h = resolution_flag(args.resolution) or (None, None)
    settings = PathSettings(seconds=number_flag(args.seconds, "--seconds"), fps=number_flag(args.fps, "--fps"),
                            width=w, height=h, downscale=number_flag(args.downscale, "--downscale"),
                            fov=number_flag(args.fov, "--fov", high=179.9), time_range=range_flag(args.time, "--time", True),
                            turns=number_flag(args.turns, "--turns"))
    require_run(args.run)
    model, state = load_model(args.run, device=device_from(args))
    model, how = fast_model(model, state, args.run, exact=args.exact, bake_file=args.baked,
                            progress=not args.no_progress)
    print(f"renderer: {how}")  # the bake (or why the live field) before a long render, not only after it
    if settings.time_range is not None and not model.info.dynamic:
        warnings.warn("--time ignored: this run's field is static")
    spec = args.path or default_path(model.info)
    path = make_path(spec, model.info, settings)
    style = VisualStyle(depth_range=depth_range, colormap=args.colormap)
    summary = render_video(model, path, out, outputs, args.layout, style, progress=not args.no_progress,
                           extra={"run": str(args.run), "step": state.get("step"), "path_spec": str(spec),
                                  "renderer": how})
    files = ", ".join(summary["files"])
    print(f"{len(path)} frames of {path.width}x{path.height} at {path.fps:g} fps ({summary['frames_per_second']:.2f} "
          f"frames/s rendered, {how}) -> {files}")
    return 0
