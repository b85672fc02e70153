"""``neuralfields bake``: cache a trained run's field on a sparse lattice for fast rendering."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import add_device_argument, device_from, positive_int, require_run, run_dir


def register(sub) -> None:
    p = sub.add_parser("bake", help="bake a trained run for fast rendering (render and view use it)",
                       description="Cache the trained field's density and features on a block-sparse lattice "
                                   "(written to RUN/baked/step_XXXXXX.pt, tied to that checkpoint). render and "
                                   "view bake on first use anyway; this does it ahead. See docs/bake.md.")
    p.add_argument("run", type=run_dir, help="run folder")
    p.add_argument("--checkpoint", type=Path, help="checkpoint file to bake (default: the run's newest)")
    p.add_argument("--resolution", type=positive_int,
                   help="lattice cells per axis of the field cube (default: the field's finest grid, at most 512 "
                        "with features and 1024 for density alone)")
    p.add_argument("--features", choices=["auto", "lattice", "live"], default="auto",
                   help="colour features cached on the lattice, or read from the trained field at the samples "
                        "that get a colour (auto: live for fields finer than 512 cells)")
    p.add_argument("--rays", type=positive_int, help="training rays rendered to find what shows (default 524288)")
    p.add_argument("--out", type=Path, help="bake file (default: RUN/baked/step_XXXXXX.pt)")
    p.add_argument("--no-progress", action="store_true")
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..bake import BakeConfig, bake_run
    from ..scene_model import load_model

    require_run(args.run)
    cfg = BakeConfig(features=args.features)
    if args.resolution:
        cfg.resolution = args.resolution
    if args.rays:
        cfg.visibility_rays = args.rays
    cfg.check()
    start = time.perf_counter()
    model, state = load_model(args.run, args.checkpoint, device=device_from(args))
    baked, path, seconds = bake_run(model, state, args.run, cfg, args.out, progress=not args.no_progress)
    lattice = baked.lattice
    print(f"baked step {state.get('step', '?')} in {seconds:.1f} s ({time.perf_counter() - start:.1f} s with loading): "
          f"{lattice.kept_blocks:,} blocks of {lattice.block}^3 cells at {lattice.resolution}^3, "
          f"{int(lattice.cells.sum()):,} cells sampled, {baked.sampler} sampler, {baked.nbytes / 2**20:.0f} MiB -> {path}")
    return 0
