"""Benchmark video rendering and mesh export on the CPU.

Measures frames per second of ``neuralfields render`` (orbit, rgb) at 400x400 and the time of a
marching-cubes export at 256^3 (density grid, level set, clean-up, and separately vertex colours).

    python scripts/bench_render.py [RUN] [--frames 4] [--size 400] [--mesh-resolution 256] [--out FILE]

Without RUN, a short lego run (300 steps or 5 minutes) is trained from ../shared/data (or
$NEURALFIELDS_DATA) into runs/bench-render-lego and reused by later calls; when the data is
absent the script says so and exits. Results are
written as JSON (default docs/bench_render.json) and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from neuralfields.camera_paths import PathSettings, make_path
from neuralfields.config import load_preset
from neuralfields.export.mesh import MeshConfig, density_level, density_volume, export_mesh, resolve_box
from neuralfields.export.volume import marching_cubes
from neuralfields.export.video import render_path
from neuralfields.scene_model import load_model


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="trained run folder (default: train a short lego run)")
    parser.add_argument("--frames", type=int, default=4, help="frames rendered for the fps figure")
    parser.add_argument("--size", type=int, default=400, help="frame width and height")
    parser.add_argument("--mesh-resolution", type=int, default=256)
    parser.add_argument("--train-steps", type=int, default=300, help="steps of the lego run trained without RUN")
    parser.add_argument("--train-seconds", type=float, default=300.0, help="time budget of that run")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-mesh", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("docs/bench_render.json"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    run = Path(args.run) if args.run else train_lego(args.train_steps, args.train_seconds, Path("runs/bench-render-lego"))
    if run is None:
        return 0
    model, state = load_model(run)
    result = {
        "run": Path(run).name,  # the folder name only: no machine paths in the report
        "step": state.get("step"), "field": model.cfg.field.name,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "platform": platform.platform()},
        "note": "CPU timings; on a shared machine they are inflated by other processes' load",
        "video": bench_video(model, args.frames, args.size),
    }
    if not args.skip_mesh:
        result["mesh"] = bench_mesh(model, args.mesh_resolution)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
