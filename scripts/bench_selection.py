#!/usr/bin/env python
"""Benchmark example selection (``train.selection``: uniform, int, errormap) on the CPU.

Two parts, each written into ``--json`` (other parts already there are kept) and the markdown
table ``--markdown``:

- ``images``: 2D fitting of scikit-image's ``camera`` and ``astronaut`` at ``--size`` (centre
  crop) with SIREN and the hash grid (``ngp``), batches of a quarter of the pixels, the same
  step budget for every selection. Full-image PSNR every ``--eval-every`` steps gives the steps
  and training seconds to reach ``--target`` dB and the PSNR at equal time (the shortest run's
  training time, interpolated on each curve).
- ``lego``: the ``lego`` preset (200x200) trained for ``--marks`` minutes (the last mark is the
  time budget that paces the lr schedule), val PSNR at each mark, once per selection.

    python scripts/bench_selection.py --part images
    python scripts/bench_selection.py --part lego --marks 1 2 3 5 10
    python scripts/bench_selection.py --part lego --marks 1 2 3 --label lego-3min
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_fields import load_images  # noqa: E402
from bench_train import train_to_marks  # noqa: E402

from neuralfields.config import apply_overrides, load_preset  # noqa: E402
from neuralfields.data import load_data  # noqa: E402
from neuralfields.fit.image import FitConfig, fit_image  # noqa: E402
from neuralfields.train.scene import scene_trainer  # noqa: E402

KINDS = ["uniform", "int", "errormap"]
# 2D fields at their fit defaults; steps per field so each run takes a minute or two here.
IMAGE_FIELDS = {"siren": ({}, 400), "ngp": ({"max_res": 512}, 400)}


def first_crossing(curve: list[dict], target: float) -> dict | None:
    """The first evaluation at or above ``target`` dB, with its seconds interpolated linearly."""
    prev = {"step": 0, "seconds": 0.0, "psnr": 0.0}
    for point in curve:
        if point["psnr"] >= target:
            f = (target - prev["psnr"]) / max(point["psnr"] - prev["psnr"], 1e-9)
            return {"step": point["step"], "seconds": round(prev["seconds"] + f * (point["seconds"] - prev["seconds"]), 1)}
        prev = point
    return None


def psnr_at(curve: list[dict], seconds: float) -> float:
    times = [0.0] + [p["seconds"] for p in curve]
    values = [curve[0]["psnr"]] + [p["psnr"] for p in curve]
    return float(np.interp(seconds, times, values))


def bench_images(args) -> list[dict]:
    images = load_images(["camera", "astronaut"], args.size, Path(args.data))
    rows = []
    for image_name, image in images.items():
        h, w, _ = image.shape
        for field, (options, steps) in IMAGE_FIELDS.items():
            # A short untimed fit first: the first run of a field pays one-off costs (allocator,
            # kernels' first calls) that would otherwise count against whichever selection runs first.
            fit_image(image, field, options, FitConfig(steps=10, batch=h * w // 4), progress=False)
            runs = {}
            for kind in args.kinds:
                cfg = FitConfig(steps=steps, batch=h * w // 4, selection=kind,
                                eval_steps=list(range(args.eval_every, steps + 1, args.eval_every)))
                torch.manual_seed(0)
                result = fit_image(image, field, options, cfg, progress=False)
                runs[kind] = result.checkpoints
                print(f"  {image_name:9s} {field:5s} {kind:8s} {result.psnr:6.2f} dB after {steps} steps, "
                      f"{result.seconds:6.1f} s", flush=True)
            equal = min(c[-1]["seconds"] for c in runs.values())
            for kind, curve in runs.items():
                hit = first_crossing(curve, args.target)
                rows.append({"image": image_name, "field": field, "selection": kind, "size": args.size,
                             "batch": h * w // 4, "steps": steps, "final_psnr": round(curve[-1]["psnr"], 2),
                             "seconds": round(curve[-1]["seconds"], 1),
                             "steps_to_target": None if hit is None else hit["step"],
                             "seconds_to_target": None if hit is None else hit["seconds"],
                             "equal_time_seconds": round(equal, 1), "psnr_at_equal_time": round(psnr_at(curve, equal), 2),
                             "curve": [{k: round(v, 2) if isinstance(v, float) else v for k, v in p.items()} for p in curve]})
    return rows


def bench_lego(args) -> list[dict]:
    rows = []
    for kind in args.kinds:
        cfg = load_preset("lego")
        cfg.train.eval_every = cfg.train.checkpoint_every = 0
        cfg.train.steps = 10**9
        cfg.train.time_budget = max(args.marks) * 60
        apply_overrides(cfg, [f"train.selection={kind}", *args.set])
        if not Path(cfg.data.path).is_dir():
            print(f"skipped lego: dataset not found at {cfg.data.path} (set NEURALFIELDS_DATA)")
            return []
        torch.manual_seed(0)
        trainer = scene_trainer(cfg, load_data(cfg.data, "train"), None, progress=False)
        val = load_data(cfg.data, "val")
        print(f"lego, selection {kind}, budget {max(args.marks)} min", flush=True)
        marks = train_to_marks(trainer, val, args.marks, args.eval_images)
        rows.append({"selection": kind, "budget_minutes": max(args.marks), "set": args.set, "marks": marks})
    return rows


def markdown(report: dict) -> str:
    lines = ["# Example selection benchmark (CPU)", "",
             "Written by `scripts/bench_selection.py`; do not edit by hand. "
             f"{report['machine']}, {report['threads']} threads, torch {report['torch']}.", ""]
    if report.get("images"):
        lines += ["## 2D fitting (batches of a quarter of the pixels)", "",
                  "| image | field | selection | PSNR after the steps | steps to 30 dB | seconds to 30 dB | PSNR at equal time |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
        for r in report["images"]:
            def fmt(v):
                return "not reached" if v is None else v
            lines.append(f"| {r['image']} {r['size']}px | {r['field']} | {r['selection']} | {r['final_psnr']:.2f} "
                         f"({r['steps']} steps, {r['seconds']} s) | {fmt(r['steps_to_target'])} | "
                         f"{fmt(r['seconds_to_target'])} | {r['psnr_at_equal_time']:.2f} ({r['equal_time_seconds']} s) |")
        lines.append("")
    for label, runs in report.items():
        if not label.startswith("lego") or not runs:
            continue
        marks = sorted({m["minutes"] for run in runs for m in run["marks"]})
        lines += [f"## {label}: lego 200x200, val PSNR (dB) at minutes of training", "",
                  f"Budget {runs[0]['budget_minutes']} min per run (the lr schedule paces by it); "
                  f"{runs[0]['marks'][0]['val_images']} val views at each mark.", "",
                  "| selection | " + " | ".join(f"{m:g} min" for m in marks) + " | steps |",
                  "| --- | " + " | ".join("---:" for _ in marks) + " | ---: |"]
        for run in runs:
            by = {m["minutes"]: m for m in run["marks"]}
            cells = [f"{by[m]['val_psnr']:.2f}" if m in by else "" for m in marks]
            lines.append(f"| {run['selection']} | " + " | ".join(cells) + f" | {run['marks'][-1]['steps']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["images", "lego"], required=True)
    parser.add_argument("--kinds", nargs="+", default=KINDS)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--target", type=float, default=30.0)
    parser.add_argument("--marks", type=float, nargs="+", default=[1, 2, 3, 5, 10])
    parser.add_argument("--eval-images", type=int, default=20)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="lego: config overrides")
    parser.add_argument("--label", help="lego: the report section (default lego-<budget>min)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--json", default="docs/bench_selection.json")
    parser.add_argument("--markdown", default="docs/bench_selection.md")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    path = Path(args.json)
    report = json.loads(path.read_text()) if path.exists() else {}
    report.update(machine=platform.processor() or platform.machine(), threads=torch.get_num_threads(),
                  torch=torch.__version__)
    start = time.perf_counter()
    if args.part == "images":
        report["images"] = bench_images(args)
    else:
        report[args.label or f"lego-{max(args.marks):g}min"] = bench_lego(args)
    print(f"{time.perf_counter() - start:.0f} s")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    Path(args.markdown).write_text(markdown(report))
    print(f"written {args.json} and {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
