"""Benchmark: hash-grid training on NeRF-synthetic lego on the CPU.

Trains the ``lego`` preset (200x200 with the default ``--downscale 4``) and reports wall time,
steps, samples/s and val PSNR at fixed marks of *training* time (evaluation pauses the clock).
Marks use a subset of the val split (``--eval-images``); the final mark also evaluates the
full split. Prints a table and writes JSON.

    python scripts/bench_train.py                       # marks at 1, 2, 5, 10 minutes
    python scripts/bench_train.py --marks 0.5 1 --out /tmp/quick.json
    python scripts/bench_train.py --device cuda --downscale 1 --marks 0.5 1 2 5   # lego 800x800 on a GPU

On a GPU, timings synchronise the device at every step boundary, and the report adds the peak
GPU memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from neuralfields.config import apply_overrides, load_preset
from neuralfields.data import load_data
from neuralfields.device import describe_device, resolve_device
from neuralfields.scoring import score_model
from neuralfields.train.scene import scene_trainer


def train_to_marks(trainer, val, marks: list[float], eval_images: int, sync=lambda: None) -> list[dict]:
    """Train ``trainer`` until the last of ``marks`` (minutes of training time; evaluation pauses
    the clock) and score ``eval_images`` val views at each mark; one row per mark."""
    subset = sorted({int(round(k)) for k in np.linspace(0, len(val) - 1, min(eval_images, len(val)))})
    rows, samples = [], 0
    pending = sorted(marks)
    steps = trainer.settings.steps
    while pending and trainer.step < steps:  # the last mark ends a time-budgeted run
        sync()
        start = time.perf_counter()
        stats = trainer.train_step()
        sync()
        trainer.train_seconds += time.perf_counter() - start
        samples += stats["n_samples"]
        if trainer.train_seconds >= pending[0] * 60 or trainer.step >= steps:
            done = trainer.step >= steps
            mark = pending[-1] if done else pending[0]
            pending = [] if done else pending[1:]
            result = score_model(trainer.model, val, subset)
            row = {"minutes": mark, "train_seconds": round(trainer.train_seconds, 1), "steps": trainer.step,
                   "samples_per_second": round(samples / trainer.train_seconds), "val_psnr": round(result["psnr"], 3),
                   "val_ssim": round(result["ssim"], 4), "val_images": len(subset)}
            rows.append(row)
            print(f"  {mark:5.1f} min  step {trainer.step:6d}  {row['samples_per_second']:8d} samples/s  "
                  f"val PSNR {row['val_psnr']:.2f} dB  SSIM {row['val_ssim']:.4f}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", default="lego", help="scene preset")
    parser.add_argument("--data", help="dataset folder (default: the preset's)")
    parser.add_argument("--downscale", type=float, default=4)
    parser.add_argument("--marks", type=float, nargs="+", default=[1, 2, 5, 10], help="minutes of training")
    parser.add_argument("--eval-images", type=int, default=20, help="val images at each mark")
    parser.add_argument("--full-eval", action="store_true", help="evaluate all val images at the last mark")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--fixed-steps", action="store_true",
                        help="keep the preset's step budget (default: the last mark is the budget, which paces the lr schedule)")
    parser.add_argument("--run-dir", help="also save the trained model there as a normal run folder")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--out", default="docs/bench_train.json")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(describe_device(device), flush=True)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    cfg = load_preset(args.scene)
    if args.data:
        cfg.data.path = args.data
    cfg.data.downscale = args.downscale
    cfg.train.eval_every = 0
    cfg.train.checkpoint_every = 0
    marks = sorted(args.marks)
    if not args.fixed_steps:
        cfg.train.steps = 10**9
        cfg.train.time_budget = marks[-1] * 60  # the lr schedule decays at fractions of the time budget
    apply_overrides(cfg, args.set)
    if not Path(cfg.data.path).is_dir():
        print(f"skipped: dataset not found at {cfg.data.path} (set NEURALFIELDS_DATA or --data)")
        return 0
    train = load_data(cfg.data, "train")
    val = load_data(cfg.data, "val")
    trainer = scene_trainer(cfg, train, val, run_dir=args.run_dir, progress=False, device=device)
    print(f"{args.scene}: {len(train)} train / {len(val)} val at {train.width}x{train.height}, "
          f"field {cfg.field.name} ({trainer.model.field.num_parameters:,} parameters), "
          f"{torch.get_num_threads()} threads, budget {cfg.train.steps} steps / {marks[-1]} min", flush=True)

    wall_start = time.perf_counter()
    rows = train_to_marks(trainer, val, args.marks, args.eval_images, sync)
    report = {
        "benchmark": "train", "scene": args.scene, "downscale": args.downscale, "field": cfg.field.name,
        "field_options": cfg.field.options, "num_parameters": trainer.model.field.num_parameters,
        "resolution": [train.width, train.height], "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "marks": rows, "wall_seconds": round(time.perf_counter() - wall_start, 1), "device": str(device),
    }
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
        report["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        print(f"  peak GPU memory {report['peak_memory_gib']} GiB", flush=True)
    if args.full_eval:
        full = score_model(trainer.model, val)
        report["final_full_val"] = {"psnr": round(full["psnr"], 3), "ssim": round(full["ssim"], 4), "images": len(val)}
        print(f"  full val ({len(val)} images): PSNR {full['psnr']:.2f} dB  SSIM {full['ssim']:.4f}")
    if args.run_dir:
        cfg.train.steps, cfg.train.time_budget = trainer.step, None  # what the saved run did
        (Path(args.run_dir) / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        print(f"run saved: {trainer.save()}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
