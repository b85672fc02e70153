"""Benchmark real captures on the CPU: fox, cup, bird and fern, held-out PSNR/SSIM against training time.

    python scripts/bench_real.py train --label after                 # all four scenes, marks 2 5 10 min
    python scripts/bench_real.py eval --label after                  # score every saved mark
    python scripts/bench_real.py train --label smoke --scenes fern --marks 0.2

Each scene trains from scratch exactly as ``neuralfields train --scene NAME`` would when a
preset of that name exists, else as ``neuralfields train --data FOLDER --downscale N``; the last
mark is the time budget that paces the lr schedule. ``train`` saves a checkpoint at every mark
of *training* time (saving pauses the clock) into ``runs/bench_real/<label>/<scene>``, with
steps, rays and samples per ray so far. ``eval`` then renders the held-out views (every 8th
image) of every saved mark and records PSNR, SSIM, seconds per view and samples per ray when
rendering. Splitting the two lets a slow renderer be scored after the time-budgeted training,
which must run alone on the machine. Results merge into ``docs/bench_real.json`` (keyed by label)
and the table ``docs/bench_real.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralfields.config import RunConfig, apply_overrides, available_presets, expand_data_path, load_preset  # noqa: E402
from neuralfields.data import load_data  # noqa: E402
from neuralfields.scene_model import load_model  # noqa: E402
from neuralfields.scoring import right_half_scores  # noqa: E402
from neuralfields.run.folder import write_json_atomic  # noqa: E402
from neuralfields.run.metrics import psnr, ssim  # noqa: E402
from neuralfields.render.rays import RayBatch  # noqa: E402
from neuralfields.render.space import space_name  # noqa: E402
from neuralfields.camera_paths import default_path  # noqa: E402
from neuralfields.data.scene import composite_background  # noqa: E402
from neuralfields.train.scene import scene_trainer  # noqa: E402

# scene -> (dataset folder under the data root, downscale used when no preset exists)
SCENES = {"fox": ("fox", 4), "cup": ("captures/cup", 4), "bird": ("captures/bird", 4), "fern": ("llff/fern", 8)}


def scene_config(name: str) -> RunConfig:
    """The config ``neuralfields train`` resolves for this scene (preset, else a bare data folder)."""
    folder, downscale = SCENES[name]
    if name in available_presets():
        return load_preset(name)
    cfg = RunConfig(scene=name)  # what a bare ``--data`` folder gets
    cfg.data.path, cfg.data.downscale = expand_data_path(f"${{NEURALFIELDS_DATA}}/{folder}"), downscale
    return cfg


def train(args: argparse.Namespace) -> None:
    for name in args.scenes:
        cfg = scene_config(name)
        cfg.train.steps = 10**9
        cfg.train.time_budget = max(args.marks) * 60
        cfg.train.eval_every = cfg.train.checkpoint_every = 0
        cfg.train.keep_checkpoints = 100
        apply_overrides(cfg, args.set)
        if not Path(cfg.data.path).is_dir():
            print(f"{name}: skipped, dataset not found at {cfg.data.path} (set NEURALFIELDS_DATA)")
            continue
        run_dir = Path(args.runs) / args.label / name
        cfg.output = str(run_dir)
        train_scene = load_data(cfg.data, "train")
        loop = scene_trainer(cfg, train_scene, None, run_dir=run_dir, progress=False, log=lambda s: None)
        print(f"{name} [{args.label}]: {len(train_scene)} train images at {train_scene.width}x{train_scene.height}, "
              f"field {cfg.field.name}, sampler {cfg.render.sampler}, space {space_name(loop.model.space)}, "
              f"{torch.get_num_threads()} threads", flush=True)
        marks, rows, rays, samples = sorted(args.marks), [], 0, 0
        while marks:
            start = time.perf_counter()
            stats = loop.train_step()
            loop.train_seconds += time.perf_counter() - start
            rays, samples = rays + stats["n_rays"], samples + stats.get("n_samples", 0)
            if loop.train_seconds >= marks[0] * 60:
                path = loop.save()
                rows.append({"minutes": marks.pop(0), "checkpoint": str(path), "steps": loop.step,
                             "train_seconds": round(loop.train_seconds, 1), "rays_per_step": round(rays / loop.step),
                             "train_samples_per_ray": round(samples / max(rays, 1), 1)})
                print(f"  {rows[-1]['minutes']:5.1f} min: step {loop.step}, {rows[-1]['rays_per_step']} rays/step, "
                      f"{rows[-1]['train_samples_per_ray']} samples/ray", flush=True)
        cfg.train.steps, cfg.train.time_budget = loop.step, None
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        write_json_atomic(run_dir / "bench_marks.json", {"scene": name, "label": args.label, "marks": rows,
                                                         "threads": torch.get_num_threads()})


class SampleCounter:
    """Counts the samples a model's sampler hands out while rendering (``stop()`` ends counting)."""

    def __init__(self, sampler):
        self.sampler, self.samples, self.rays = sampler, 0, 0
        self.original = sampler.sample
        sampler.sample = self.sample

    def sample(self, rays, *args, **kwargs):
        samples, aux = self.original(rays, *args, **kwargs)
        self.samples, self.rays = self.samples + len(samples), self.rays + len(rays)
        return samples, aux

    def stop(self) -> None:
        del self.sampler.sample  # the class's own method again


def evaluate(args: argparse.Namespace) -> None:
    report_path = Path(args.json)
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    for name in args.scenes:
        run_dir = Path(args.runs) / args.label / name
        marks_file = run_dir / "bench_marks.json"
        if not marks_file.exists():
            print(f"{name}: no trained marks in {run_dir}; run 'train' first")
            continue
        marks = json.loads(marks_file.read_text())["marks"]
        first, _ = load_model(run_dir, marks[0]["checkpoint"])
        held_out = load_data(first.cfg.data, "test")
        indices = list(range(len(held_out)))[: args.max_views or None]
        rows = []
        for mark in (marks[-1:] if args.last_only else marks):
            model, _ = load_model(run_dir, mark["checkpoint"])
            counter = SampleCounter(model.sampler)
            scores, seconds, renders = [], [], []
            warm_up(model, held_out)
            for i in indices:
                start = time.perf_counter()
                out = model.render_camera(held_out.cameras, i)
                seconds.append(time.perf_counter() - start)
                target = composite_background(held_out.image(i), model.background)
                renders.append((i, out["rgb"], target))
                scores.append((psnr(out["rgb"], target), ssim(out["rgb"], target)))
                if args.frames and mark is marks[-1]:
                    from neuralfields.run.folder import save_png

                    save_png(Path(args.frames) / args.label / name / f"{i:03d}.png", out["rgb"])
            row = {**{k: v for k, v in mark.items() if k != "checkpoint"},
                   "view_psnr": [round(s[0], 3) for s in scores],
                   "psnr": round(sum(s[0] for s in scores) / len(scores), 3),
                   "ssim": round(sum(s[1] for s in scores) / len(scores), 4),
                   "seconds_per_view": round(sum(seconds) / len(seconds), 2),
                   "render_samples_per_ray": round(counter.samples / max(counter.rays, 1), 1)}
            if model.appearance is not None and not args.no_protocol:  # NeRF-W's protocol, with and without
                halves = [right_half_scores(model, held_out, i, out, target) for i, out, target in renders]
                row["psnr_right_mean_code"] = round(sum(h[0] for h in halves) / len(halves), 3)
                row["psnr_right_fitted_code"] = round(sum(h[1] for h in halves) / len(halves), 3)
            rows.append(row)
            print(f"{name} [{args.label}] {row['minutes']:4.1f} min: PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.4f}, "
                  f"{row['seconds_per_view']} s/view, {row['render_samples_per_ray']} samples/ray", flush=True)
        if args.strip:
            kind = default_path(model.info)
            write_strip(model, Path(args.strip) / f"{name}_{kind}_{args.label}.png", args.strip_frames)
        cfg = first.cfg
        report.setdefault(args.label, {})[name] = {
            "data": cfg.data.path.split("data/")[-1], "downscale": cfg.data.downscale,
            "resolution": [held_out.width, held_out.height], "held_out_views": len(indices),
            "field": cfg.field.name, "sampler": cfg.render.sampler, "space": space_name(first.space),
            "marks": rows, "views": indices, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": platform.processor() or platform.machine()}
        # Several eval processes may share one report: merge into what is there now.
        current = json.loads(report_path.read_text()) if report_path.exists() else {}
        current.setdefault(args.label, {})[name] = report[args.label][name]
        write_json_atomic(report_path, current)
        report = current
    write_table(report, report_path.with_suffix(".md"))


def warm_up(model, scene) -> None:
    """Render a few rays first so that compiling the hot functions is not timed as rendering."""
    pixels = torch.arange(1024, device=model.device)
    with torch.no_grad():
        model.render_rays(RayBatch.from_pixels(scene.cameras.to(model.device), 0, pixels,
                                               background=model.background.to(model.device)))


def write_strip(model, path: Path, n_frames: int) -> None:
    """``n_frames`` views of the run's default video path (an orbit; the spiral of forward-facing
    captures) at the training size, side by side in one PNG."""
    from neuralfields.camera_paths import PathSettings, make_path
    from neuralfields.run.folder import save_png

    path_cams = make_path(default_path(model.info), model.info, PathSettings(seconds=n_frames, fps=1)).cameras
    frames = [model.render_camera(path_cams, i)["rgb"] for i in range(len(path_cams))]
    save_png(path, torch.cat(frames, dim=1))
    print(f"orbit strip: {path} ({len(frames)} frames)", flush=True)


def write_table(report: dict, path: Path) -> None:
    lines = ["# Real captures on 2 CPU cores", "",
             "Written by `scripts/bench_real.py` (train, then eval): held-out views are every 8th image.",
             "PSNR / SSIM at each mark of training time; steps; samples per ray in training and when rendering;",
             "seconds to render one held-out view. Runs with per-image appearance codes render held-out views",
             "with the mean code, and also get NeRF-W's protocol: PSNR on the right half of each view with the",
             "mean code and with a code fitted on the left half (columns \"right half\").", "",
             "| run | scene | size | mark | PSNR | SSIM | right half: mean / fitted code | steps | samples/ray train "
             "| samples/ray render | s/view |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, scenes in report.items():
        for name, entry in scenes.items():
            size = "x".join(str(v) for v in entry["resolution"])
            for m in entry["marks"]:
                halves = (f"{m['psnr_right_mean_code']:.2f} / {m['psnr_right_fitted_code']:.2f}"
                          if "psnr_right_fitted_code" in m else "")
                lines.append(f"| {label} | {name} | {size} | {m['minutes']:g} min | {m['psnr']:.2f} | {m['ssim']:.3f} | "
                             f"{halves} | {m['steps']} | {m['train_samples_per_ray']} | {m['render_samples_per_ray']} | "
                             f"{m['seconds_per_view']} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=["train", "eval"])
    p.add_argument("--label", required=True, help="name of this configuration (before, after, ...)")
    p.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    p.add_argument("--marks", type=float, nargs="+", default=[2, 5, 10], help="minutes of training")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, as in train")
    p.add_argument("--runs", default="runs/bench_real", help="where the marks' run folders go")
    p.add_argument("--max-views", type=int, default=0, help="held-out views scored (0: all)")
    p.add_argument("--last-only", action="store_true", help="score only the last mark")
    p.add_argument("--no-protocol", action="store_true", help="skip NeRF-W's half-image protocol")
    p.add_argument("--frames", help="also save the last mark's held-out renders under this folder")
    p.add_argument("--strip", help="also write a PNG strip of video frames (orbit, or spiral for forward-facing "
                                   "captures) of the last mark into this folder")
    p.add_argument("--strip-frames", type=int, default=6)
    p.add_argument("--json", default=str(ROOT / "docs" / "bench_real.json"))
    args = p.parse_args()
    (train if args.stage == "train" else evaluate)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
