"""Benchmark baked rendering against the live field on the CPU.

For each run: the bake (seconds, blocks, MiB), then live and baked side by side: seconds per
view at a given size (median of a few orbit views, after a warm-up), frames per second of an
orbit video, and PSNR/SSIM on the dataset's views at the run's resolution, with samples per ray.

    python scripts/bench_bake.py LEGO_RUN [--fox FOX_RUN] [--views 10] [--out docs/bench_bake.json]

Figures are written as JSON and a markdown table (``--out`` with ``.md``) and printed. Run it alone
on the machine: it measures seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_real import SampleCounter  # noqa: E402
from neuralfields.bake import BakeConfig, bake_run, baked_model  # noqa: E402
from neuralfields.camera_paths import PathSettings, make_path  # noqa: E402
from neuralfields.data import load_data  # noqa: E402
from neuralfields.data.scene import composite_background  # noqa: E402
from neuralfields.export.video import render_path  # noqa: E402
from neuralfields.scene_model import load_model  # noqa: E402
from neuralfields.run.folder import write_json_atomic  # noqa: E402
from neuralfields.run.metrics import psnr, ssim  # noqa: E402


def view_seconds(model, width: int, height: int, frames: int = 5) -> float:
    """Median seconds of one orbit view of ``width x height`` (after one warm-up frame)."""
    path = make_path("orbit", model.info, PathSettings(seconds=frames + 1, fps=1, width=width, height=height))
    times, start = [], time.perf_counter()
    for i, _ in enumerate(render_path(model, path, ("rgb",), progress=False)):
        now = time.perf_counter()
        if i:
            times.append(now - start)
        start = now
    return statistics.median(times)


def video_fps(model, side: int, frames: int) -> float:
    path = make_path("orbit", model.info, PathSettings(seconds=frames, fps=1, width=side, height=side))
    next(iter(render_path(model, make_path("orbit", model.info, PathSettings(seconds=1, fps=1, width=side,
                                                                                 height=side)), ("rgb",), progress=False)))
    start = time.perf_counter()
    for _ in render_path(model, path, ("rgb",), progress=False):
        pass
    return frames / (time.perf_counter() - start)


def scores(model, scene, indices) -> dict:
    counter = SampleCounter(model.sampler)
    p, s, secs = [], [], []
    try:
        for i in indices:
            start = time.perf_counter()
            rgb = model.render_camera(scene.cameras, i)["rgb"]
            secs.append(time.perf_counter() - start)
            target = composite_background(scene.image(i), model.background)
            p.append(psnr(rgb, target))
            s.append(ssim(rgb, target))
    finally:
        counter.stop()
    return {"psnr": round(sum(p) / len(p), 3), "ssim": round(sum(s) / len(s), 4),
            "seconds_per_view": round(statistics.median(secs), 3),
            "samples_per_ray": round(counter.samples / max(counter.rays, 1), 2)}


def bench_run(run: Path, split: str, views: int, size: tuple[int, int], video_side: int, video_frames: int,
              live_video_frames: int) -> dict:
    model, state = load_model(run)
    scene = load_data(model.cfg.data, split)
    indices = list(range(min(views, len(scene))))
    cfg = BakeConfig()
    bake, path, seconds = bake_run(model, state, run, cfg, progress=False)
    baked, lattice = baked_model(model, bake, cfg), bake.lattice
    print(f"{run.name}: baked in {seconds:.1f} s, {lattice.kept_blocks:,} blocks, {bake.nbytes / 2**20:.0f} MiB, "
          f"file {path.stat().st_size / 2**20:.0f} MiB")
    report = {"run": run.name, "step": state.get("step"), "split": split, "views": len(indices),
              "bake": {"seconds": round(seconds, 1), "blocks": lattice.kept_blocks,
                       "cells_sampled": int(lattice.cells.sum()), "resolution": lattice.resolution,
                       "sampler": bake.sampler, "memory_mib": round(bake.nbytes / 2**20, 1),
                       "file_mib": round(path.stat().st_size / 2**20, 1)}}
    for name, m, frames in (("live", model, live_video_frames), ("baked", baked, video_frames)):
        w, h = size
        row = {f"view_{w}x{h}_seconds": round(view_seconds(m, w, h, 3 if name == "live" else 5), 3)}
        if video_side:
            row[f"video_{video_side}_fps"] = round(video_fps(m, video_side, frames), 3)
        row.update(scores(m, scene, indices))
        report[name] = row
        print(f"  {name}: {row}")
    report["psnr_loss_db"] = round(report["live"]["psnr"] - report["baked"]["psnr"], 3)
    return report


def write_table(report: dict, path: Path) -> None:
    lines = ["# Baked rendering", "",
             "Written by `scripts/bench_bake.py` on the CPU (see `machine` in the JSON); live = the trained field",
             "with its own sampler, baked = `neuralfields bake` (block-sparse lattice, docs/bake.md).", "",
             "| run | renderer | view | s/view | video fps | PSNR | SSIM | samples/ray | bake |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["runs"]:
        for name in ("live", "baked"):
            row = r[name]
            view = next(k for k in row if k.startswith("view_"))
            fps = next((f"{v:.2f} ({k.split('_')[1]}^2)" for k, v in row.items() if k.startswith("video_")), "-")
            bake = (f"{r['bake']['seconds']} s, {r['bake']['memory_mib']} MiB" if name == "baked" else "-")
            lines.append(f"| {r['run']} ({r['split']}, {r['views']} views) | {name} | {view.split('_')[1]} | "
                         f"{row[view]} | {fps} | {row['psnr']} | {row['ssim']} | {row['samples_per_ray']} | {bake} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a trained object run (lego)")
    p.add_argument("--fox", type=Path, help="a trained unbounded run (fox), scored on its held-out views")
    p.add_argument("--views", type=int, default=10)
    p.add_argument("--out", default="docs/bench_bake.json")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    runs = [bench_run(args.run, "val", args.views, (256, 256), 400, 8, 2)]
    if args.fox:
        runs.append(bench_run(args.fox, "test", min(args.views, 6), (480, 270), 0, 0, 0))
    report = {"machine": {"cpus": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()},
              "runs": runs}
    out = Path(args.out)
    write_json_atomic(out, report)
    write_table(report, out.with_suffix(".md"))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
