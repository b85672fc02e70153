"""``neuralfields fit``: fit a 2D image with any field; write the reconstruction, metrics and a comparison."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import _parse_value
from ..errors import NeuralFieldsError
from ..fields import field_config
from ..fit.image import FitConfig, fit_image, write_outputs
from ..selection import SELECTORS
from ..fit.io import collapse_grey, read_signal_image, resize_longest
from .common import add_device_argument, device_from, positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser("fit", help="fit a 2D image (PNG, JPG, EXR) with a field: reconstruction, PSNR/SSIM, comparison",
                       description="Fit an image with any registered field taking 2D coordinates. Writes "
                                   "reconstruction.png, comparison.png (target | reconstruction | error) and metrics.json.")
    p.add_argument("image", type=Path, help="image file (PNG, JPG, EXR; EXR is clipped to [0, 1] and sRGB-encoded)")
    p.add_argument("--field", default="siren", help="field to fit with (default: siren)")
    p.add_argument("--steps", type=positive_int, default=2000, help="optimisation steps (default 2000)")
    p.add_argument("--batch", type=int, default=0, metavar="PIXELS",
                   help="random pixels per step; 0 (default) uses the whole image every step")
    p.add_argument("--selection", default="errormap", choices=SELECTORS.names(),
                   help="with --batch: which pixels a step trains on: uniform, int (largest errors), "
                        "errormap (drawn in proportion to error; default)")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate (default: the field's recommended rate)")
    p.add_argument("--size", type=positive_int, help="resize so the longest side has this many pixels")
    p.add_argument("--output", type=Path, help="output folder (default runs/fit-<image>-<field>)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="field option, e.g. --set hidden=128 --set backbone_options={\"first_omega\":60}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="STEPS",
                   help="write a checkpoint into the output folder every N steps (always at the end)")
    p.add_argument("--resume", action="store_true", help="continue the fit in --output from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_argument(p)
    p.set_defaults(handler=run)


def parse_options(assignments: list[str]) -> dict:
    options = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NeuralFieldsError(f"--set {item}: expected KEY=VALUE (a field option)")
        options[key] = _parse_value(value)
    return options


def run(args: argparse.Namespace) -> int:
    options = parse_options(args.set)
    field_config(args.field, options)  # unknown field or option: fail before reading the image
    if args.batch < 0:
        raise NeuralFieldsError(f"--batch must be 0 (whole image) or positive, got {args.batch}")
    image = collapse_grey(read_signal_image(args.image))
    if args.size:
        image = resize_longest(image, args.size)
    h, w, c = image.shape
    out_dir = args.output or Path("runs") / f"fit-{args.image.stem}-{args.field}"
    cfg = FitConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                    checkpoint_every=args.checkpoint_every or 0, selection=args.selection)
    if not args.resume and (out_dir / "checkpoints").is_dir() and any((out_dir / "checkpoints").iterdir()):
        raise NeuralFieldsError(f"{out_dir}: output folder already has checkpoints; pass --resume to continue it "
                                "or --output for a new fit")
    device = device_from(args)
    print(f"image: {args.image} ({w}x{h}, {c} channel{'s' if c > 1 else ''}); field: {args.field}; output: {out_dir}")
    result = fit_image(image, args.field, options, cfg, progress=not args.no_progress, out_dir=out_dir,
                       resume=args.resume, device=device)
    paths = write_outputs(result, image, out_dir, {"image": str(args.image)})
    print(json.dumps({"psnr": round(result.psnr, 3), "ssim": round(result.ssim, 4), "seconds": round(result.seconds, 2),
                      "parameters": result.num_parameters, "lr": result.lr, "batch": result.batch}))
    print(f"written: {paths['reconstruction']}, {paths['comparison']}, {paths['metrics']}")
    return 0
