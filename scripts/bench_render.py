"""Benchmark video rendering and mesh export on the CPU.

Sections (``--sections``, default all):

* ``video``: frames per second of ``render_path`` (orbit, rgb) at 400x400 with the live field;
* ``mesh``: a marching-cubes export at 256^3 (density grid, level set, clean-up, and separately
  vertex colours);
* ``path``: a camera path rendered by the viewer's Camera path tab against the command line the
  tab offers for it (``neuralfields render RUN --path keyframes-....json ...``), both with the
  run's bake: seconds per frame of each, the command's first frame (one-off compilation) and
  wall time, whether the frames are equal, and the same command without ``--threads`` (how it
  was offered before). Needs the viewer extra.

    python scripts/bench_render.py [RUN] [--sections video,mesh,path] [--frames 4] [--size 400]
                                   [--mesh-resolution 256] [--path-side 128] [--path-fps 12]
                                   [--path-seconds 4] [--threads N] [--out FILE]

Without RUN, a short lego run (300 steps or 5 minutes) is trained from ../shared/data (or
$NEURALFIELDS_DATA) into runs/bench-render-lego and reused by later calls; when the data is
absent the script says so and exits. Results are written as JSON (default docs/bench_render.json;
sections not measured keep the file's earlier figures) and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neuralfields.camera_paths import PathSettings, make_path, with_size
from neuralfields.config import load_preset
from neuralfields.export.mesh import MeshConfig, density_level, density_volume, export_mesh, resolve_box
from neuralfields.export.volume import marching_cubes
from neuralfields.export.video import VisualStyle, render_path
from neuralfields.scene_model import load_model
from neuralfields.threads import torch_threads

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("video", "mesh", "path")


def train_lego(steps: int, seconds: float, out: Path) -> Path | None:
    """A short lego run (the lego preset, ``steps`` steps or ``seconds`` of training), or None without data."""
    from neuralfields.data import load_data
    from neuralfields.train.scene import scene_trainer
    from neuralfields.run.checkpoints import latest_checkpoint

    cfg = load_preset("lego")
    if not Path(cfg.data.path).is_dir():
        print(f"skipping: lego data not found at {cfg.data.path} (set NEURALFIELDS_DATA or pass a run folder)")
        return None
    if latest_checkpoint(out) is not None:
        return out  # reuse an earlier benchmark run
    cfg.train.steps = steps
    cfg.train.time_budget = seconds
    cfg.train.eval_every = 0
    cfg.output = str(out)
    scene_trainer(cfg, load_data(cfg.data, "train"), None, out, progress=True).fit()
    return out


def bench_video(model, frames: int, size: int) -> dict:
    # One small frame first: torch.compile's one-off compilation is not a per-frame cost.
    for _ in render_path(model, make_path("orbit", model.info, PathSettings(fps=1, seconds=1, width=32, height=32)),
                         ("rgb",), progress=False):
        pass
    path = make_path("orbit", model.info, PathSettings(fps=frames, seconds=1, width=size, height=size))
    start = time.perf_counter()
    for _ in render_path(model, path, ("rgb",), progress=True):
        pass
    seconds = time.perf_counter() - start
    return {"frames": frames, "size": [size, size], "seconds": round(seconds, 3), "fps": round(frames / seconds, 4)}


def bench_mesh(model, resolution: int) -> dict:
    cfg = MeshConfig(resolution=resolution, colors=False)
    box = resolve_box(model, None)
    t0 = time.perf_counter()
    level = density_level(model, cfg)
    t1 = time.perf_counter()
    volume = density_volume(model, box, resolution)
    t2 = time.perf_counter()
    verts, faces = marching_cubes(volume, level)
    t3 = time.perf_counter()
    mesh = export_mesh(model, MeshConfig(resolution=resolution, threshold=level, colors=True))
    t4 = time.perf_counter()
    return {"resolution": resolution, "grid_shape": list(volume.values.shape), "level": round(level, 4),
            "level_seconds": round(t1 - t0, 3), "density_grid_seconds": round(t2 - t1, 3),
            "marching_cubes_seconds": round(t3 - t2, 3), "raw_faces": int(len(faces)),
            "full_export_with_colours_seconds": round(t4 - t3, 3), "faces": int(len(mesh.faces))}


def decoded(video: Path) -> list[np.ndarray]:
    import imageio.v3 as iio

    return list(iio.imiter(str(video)))


def same_frames(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def run_command(argv: list[str], cwd: Path, out: Path) -> dict:
    """Run a ``neuralfields ...`` command line in a fresh process (``--out`` replaced by ``out``):
    its wall time and the render summary it writes beside the video."""
    argv = list(argv)
    argv[argv.index("--out") + 1] = str(out)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "neuralfields", *argv[1:], "--no-progress"], cwd=cwd, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed:\n{done.stderr}")
    summary = json.loads(out.with_suffix(".json").read_text())
    frames = summary["path"]["frames"]
    steady = (summary["render_seconds"] - summary["first_frame_seconds"]) / max(frames - 1, 1)
    return {"command": shlex.join(argv[:argv.index("--out") + 1] + ["path.mp4"] + argv[argv.index("--out") + 2:]),
            "torch_threads": summary["torch_threads"], "renderer": summary["renderer"].split(" /")[0].split(" (")[0],
            "wall_seconds": round(wall, 3), "render_seconds": summary["render_seconds"],
            "first_frame_seconds": summary["first_frame_seconds"],
            "seconds_per_frame": round(summary["render_seconds"] / frames, 4),
            "seconds_per_frame_after_first": round(steady, 4)}


def bench_path(run: Path, side: int, fps: float, seconds: float, threads: int) -> dict:
    """The viewer's Camera path tab against the command it offers for the same path file.

    The viewer side runs here as ``neuralfields view --threads N`` would: the run loaded (its
    bake read), one view rendered first as the page does before any path (so the bake's sampler
    is compiled), then the path rendered by ``viewer.paths.render_file``. The command runs in a
    fresh process twice: as offered, and without ``--threads`` (as offered before).
    """
    from viewer import ViewerConfig
    from viewer import paths
    from viewer.core import OutputFiles, Viewer, render_picture, run_size
    from viewer.runs import RunLibrary

    run = run.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-render-path-") as tmp, torch_threads(threads):
        cfg = ViewerConfig(threads=threads, output_dir=tmp, max_resolution=max(side, 256)).resolved()
        viewer = Viewer(cfg, RunLibrary(run, 1, cfg.device), OutputFiles(cfg.output_dir, cfg.keep_files))
        start = time.perf_counter()
        loaded = viewer.library.get(run.name)
        load_seconds = time.perf_counter() - start
        keys = [paths.keyframe(loaded, azimuth, 20.0, 1.0, 40.0, "0,0,0", None) for azimuth in (0.0, 120.0, 240.0)]
        files = paths.write_path(viewer, loaded, keys, seconds, fps, side, False, "rgb")
        path = paths.read_path(loaded, files.ours)
        start = time.perf_counter()
        render_picture(loaded, with_size(path, *run_size(loaded, cfg.default_resolution)), "rgb", VisualStyle())
        first_view = time.perf_counter() - start
        video, viewer_seconds = paths.render_file(viewer, loaded, path, "rgb", "path")
        argv = shlex.split(files.command)
        offered = run_command(argv, Path(tmp), Path(tmp) / "cli.mp4")
        before = [a for i, a in enumerate(argv) if a != "--threads" and (i == 0 or argv[i - 1] != "--threads")]
        default = run_command(before, Path(tmp), Path(tmp) / "cli-default.mp4")
        for result in (offered, default):  # no machine paths in the report
            result["command"] = result["command"].replace(shlex.quote(str(run)), "RUN")
        reference = decoded(video)
        offered["frames_equal_viewer"] = same_frames(reference, decoded(Path(tmp) / "cli.mp4"))
        default["frames_equal_viewer"] = same_frames(reference, decoded(Path(tmp) / "cli-default.mp4"))
    frames = len(path)
    return {"step": loaded.state.get("step"), "frames": frames, "size": [path.width, path.height], "fps": fps,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "viewer": {"torch_threads": threads, "renderer": loaded.renderer.split(" /")[0],
                       "load_seconds": round(load_seconds, 3), "first_view_seconds": round(first_view, 3),
                       "render_seconds": round(viewer_seconds, 3),
                       "seconds_per_frame": round(viewer_seconds / frames, 4)},
            "cli_as_offered": offered, "cli_without_threads": default}


def print_path(result: dict) -> None:
    v = result["viewer"]
    print(f"path: {result['frames']} frames of {result['size'][0]}x{result['size'][1]}, load average "
          f"{result['load_average'][0]}")
    print(f"  viewer ({v['torch_threads']} thread(s)): {v['seconds_per_frame']:.3f} s/frame, "
          f"{v['render_seconds']:.1f} s")
    for name in ("cli_as_offered", "cli_without_threads"):
        c = result[name]
        print(f"  {name.replace('_', ' ')} ({c['torch_threads']} thread(s)): {c['seconds_per_frame']:.3f} s/frame "
              f"({c['seconds_per_frame_after_first']:.3f} after the first frame of {c['first_frame_seconds']:.1f} s), "
              f"{c['render_seconds']:.1f} s rendering, {c['wall_seconds']:.1f} s wall; frames equal the viewer's: "
              f"{c['frames_equal_viewer']}")


def machine() -> dict:
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="trained run folder (default: train a short lego run)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--frames", type=int, default=4, help="frames rendered for the fps figure")
    parser.add_argument("--size", type=int, default=400, help="frame width and height")
    parser.add_argument("--mesh-resolution", type=int, default=256)
    parser.add_argument("--path-side", type=int, default=128, help="longest side of the path's frames (viewer default)")
    parser.add_argument("--path-fps", type=float, default=12.0, help="the path's frame rate (viewer default)")
    parser.add_argument("--path-seconds", type=float, default=4.0, help="the path's length (viewer default)")
    parser.add_argument("--path-threads", type=int, default=1,
                        help="the viewer's --threads for the path section (the offered command carries it)")
    parser.add_argument("--train-steps", type=int, default=300, help="steps of the lego run trained without RUN")
    parser.add_argument("--train-seconds", type=float, default=300.0, help="time budget of that run")
    parser.add_argument("--threads", type=int, help="torch threads of the video and mesh sections (default: torch's choice)")
    parser.add_argument("--skip-mesh", action="store_true", help="leave the mesh section out")
    parser.add_argument("--out", type=Path, default=Path("docs/bench_render.json"))
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip() and not (args.skip_mesh and s.strip() == "mesh")]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        parser.error(f"--sections: unknown section(s) {', '.join(unknown) or '(none given)'}; choose from "
                     f"{', '.join(SECTIONS)}")
    if args.path_threads < 1:
        parser.error(f"--path-threads: expected a positive integer, got {args.path_threads}")

    run = Path(args.run) if args.run else train_lego(args.train_steps, args.train_seconds, Path("runs/bench-render-lego"))
    if run is None:
        return 0
    # Sections not measured now keep the file's earlier figures.
    result = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if "video" in sections or "mesh" in sections:
        with torch_threads(args.threads):
            model, state = load_model(run)
            result.update({
                "run": Path(run).name,  # the folder name only: no machine paths in the report
                "step": state.get("step"), "field": model.cfg.field.name, "machine": machine(),
                "note": "CPU timings; on a shared machine they are inflated by other processes' load",
            })
            if "video" in sections:
                result["video"] = bench_video(model, args.frames, args.size)
            if "mesh" in sections:
                result["mesh"] = bench_mesh(model, args.mesh_resolution)
            del model
    if "path" in sections:
        sys.path.insert(0, str(ROOT))  # the viewer package sits beside neuralfields/
        try:
            import viewer  # noqa: F401
        except ImportError as exc:
            print(f"path: skipped (the viewer extra is missing: {exc.name})")
        else:
            result["path"] = {"run": Path(run).resolve().name, "machine": machine(),
                              **bench_path(Path(run), args.path_side, args.path_fps, args.path_seconds,
                                           args.path_threads)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name in ("video", "mesh"):
        if name in sections:
            print(name, json.dumps(result[name], indent=2))
    if "path" in sections and "path" in result:
        print_path(result["path"])
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
