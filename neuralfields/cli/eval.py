"""``neuralfields eval``: render a split of a trained run and write PSNR/SSIM to JSON."""

from __future__ import annotations

import argparse
import json

from ..data import load_data
from ..model import load_model
from ..train.trainer import evaluate_model
from .common import positive_int, require_run, run_dir


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run on a split (PSNR/SSIM JSON + renders)")
    p.add_argument("run", type=run_dir, help="run folder")
    p.add_argument("--split", default="val", choices=["train", "val", "test"], help="split to evaluate")
    p.add_argument("--max-images", type=positive_int, help="evaluate only the first N images")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    require_run(args.run)
    model, state = load_model(args.run)
    scene = load_data(model.cfg.data, args.split)
    indices = list(range(len(scene)))[: args.max_images] if args.max_images else None
    out_dir = args.run / "eval" / args.split
    result = evaluate_model(model, scene, indices, out_dir, progress=not args.no_progress)
    result.update(split=args.split, step=state["step"], run=str(args.run))
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    print(f"{args.split}: PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f} over {len(result['images'])} images "
          f"(step {state['step']}); written to {out_dir}/metrics.json")
    return 0
