"""Benchmark: distil a trained run into Gaussian splats for a time budget, then score the splats
and the teacher on the same held-out views.

Runs ``neuralfields distill TEACHER --student gaussians --time-budget S`` (the command a user
types), then PSNR/SSIM of the splats (our rasteriser) and of the teacher (its own renderer) on
the teacher's val/test split, and writes one JSON row per run into ``--out`` (rows of other
labels are kept). Run it alone on the machine: the budget is wall-clock training time.

    python scripts/bench_splat_distill.py runs/lego --minutes 10 --label lego
    python scripts/bench_splat_distill.py runs/lego --minutes 1 --set splats.photo_fraction=0.5 --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from neuralfields.cli import main as cli
from neuralfields.distill.pvd import load_val_scene
from neuralfields.distill import load_teacher
from neuralfields.scoring import score_model, spread_indices
from neuralfields.splats.model import load_splats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("teacher", type=Path, help="a trained run folder")
    ap.add_argument("--minutes", type=float, default=10.0, help="distillation time budget")
    ap.add_argument("--label", default=None, help="row label (default: the teacher folder's name)")
    ap.add_argument("--output", type=Path, default=None, help="splat run folder (default: a fresh TEACHER/splats-bench)")
    ap.add_argument("--eval-images", type=int, default=None, help="held-out views scored (default: all)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to distill")
    ap.add_argument("--out", type=Path, default=Path("docs/bench_splat_distill.json"))
    args = ap.parse_args()

    out = args.output or args.teacher / "splats-bench"
    if out.exists():
        shutil.rmtree(out)  # a fresh run each time: the budget must not resume an older one
    sets = [x for s in args.set for x in ("--set", s)]
    start = time.perf_counter()
    cli(["distill", str(args.teacher), "--student", "gaussians", "--time-budget", str(args.minutes * 60),
         "--output", str(out), "--no-progress", "--set", "train.eval_every=0", "--set", "train.eval_images=1", *sets])
    wall = time.perf_counter() - start

    teacher, _, _ = load_teacher(args.teacher)
    splats, _ = load_splats(out)
    val = load_val_scene(teacher.cfg)
    if val is None:
        print(f"{args.teacher}: its data has no held-out views to score", file=sys.stderr)
        return 1
    views = spread_indices(len(val), args.eval_images)
    ours, theirs = score_model(splats, val, views), score_model(teacher, val, views)
    summary = json.loads((out / "summary.json").read_text())
    row = {
        "label": args.label or args.teacher.name, "minutes": args.minutes, "settings": args.set,
        "steps": summary.get("steps"), "gaussians": len(splats.scene), "wall_seconds": round(wall, 1),
        "views": len(views), "size": [int(val.width), int(val.height)],
        "splats_psnr": round(ours["psnr"], 3), "splats_ssim": round(ours["ssim"], 4),
        "teacher_psnr": round(theirs["psnr"], 3), "teacher_ssim": round(theirs["ssim"], 4),
        "gap_db": round(theirs["psnr"] - ours["psnr"], 3),
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(row))
    rows = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    rows = [r for r in rows if r["label"] != row["label"]] + [row]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "splat distillation", "rows": rows}, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
