"""``neuralfields fit``: fit a signal (image, audio, video, shape) with a field; write the reconstruction and metrics."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import _parse_value
from ..errors import NeuralFieldsError
from ..fields import field_config
from ..fit.fitting import FitConfig, fit_signal, write_outputs
from ..fit.signals import SIGNALS, ReadOptions, read_signal
from ..selection import SELECTORS
from .common import add_device_argument, device_from, positive_float, positive_int


def register(sub) -> None:
    kinds = ", ".join(f"{name} ({' '.join(cls.suffixes) or 'folder'})" for name, cls in SIGNALS.items())
    p = sub.add_parser("fit", help="fit an image, audio clip, video or mesh with a field: reconstruction and metrics",
                       description="Fit a signal with any registered field: an image (coordinates x, y), a WAV "
                                   "clip (t), a video file or folder of frames (x, y, t) or a mesh (x, y, z; its "
                                   "occupancy or signed distance on a grid). Writes the reconstruction "
                                   "(PNG, WAV, MP4, GLB + PNG), a comparison and metrics.json. Kinds: " + kinds)
    p.add_argument("signal", type=Path, help="the file to fit (its suffix names the kind), or a folder of video frames")
    p.add_argument("--field", default="siren", help="field to fit with (default: siren)")
    p.add_argument("--steps", type=positive_int, default=2000, help="optimisation steps (default 2000)")
    p.add_argument("--time-budget", type=positive_float, metavar="SECONDS",
                   help="stop after this much optimisation time (the learning-rate decay follows it)")
    p.add_argument("--batch", type=int, default=0, metavar="SAMPLES",
                   help="random samples (pixels, audio samples, voxels) per step; 0 (default) uses the whole signal")
    p.add_argument("--selection", default="errormap", choices=SELECTORS.names(),
                   help="with --batch: which samples a step trains on: uniform, int (largest errors), "
                        "errormap (drawn in proportion to error; default)")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate (default: the field's recommended rate)")
    p.add_argument("--size", type=positive_int,
                   help="image, video: resize to this many pixels on the longest side; shape: grid cells a side (default 64)")
    p.add_argument("--frames", type=positive_int, help="video: keep the first N frames")
    p.add_argument("--seconds", type=positive_float, help="audio: keep the first S seconds")
    p.add_argument("--target", choices=["occupancy", "sdf"], help="shape: fit occupancy (default) or signed distance")
    p.add_argument("--max-samples", type=positive_int, default=ReadOptions.max_samples, metavar="N",
                   help=f"refuse signals with more samples than this (default {ReadOptions.max_samples:,})")
    p.add_argument("--output", type=Path, help="output folder (default runs/fit-<file>-<field>)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="field option over the signal's defaults, e.g. --set hidden=128 "
                        "--set backbone_options={\"first_omega\":60}")
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
    field_config(args.field, options)  # unknown field or option: fail before reading the signal
    if args.batch < 0:
        raise NeuralFieldsError(f"--batch must be 0 (whole signal) or positive, got {args.batch}")
    out_dir = args.output or Path("runs") / f"fit-{args.signal.stem or args.signal.name}-{args.field}"
    if not args.resume and (out_dir / "checkpoints").is_dir() and any((out_dir / "checkpoints").iterdir()):
        raise NeuralFieldsError(f"{out_dir}: output folder already has checkpoints; pass --resume to continue it "
                                "or --output for a new fit")
    signal = read_signal(args.signal, ReadOptions(args.size, args.frames, args.seconds, args.target, args.max_samples))
    cfg = FitConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, time_budget=args.time_budget,
                    checkpoint_every=args.checkpoint_every or 0, selection=args.selection)
    device = device_from(args)
    print(f"{signal.describe()}; field: {args.field}; output: {out_dir}")
    result = fit_signal(signal, args.field, options, cfg, progress=not args.no_progress, out_dir=out_dir,
                        resume=args.resume, device=device)
    paths = write_outputs(signal, result, out_dir, {signal.kind: str(args.signal)})
    shown = {key: round(value, 4) for key, value in result.scores.items() if isinstance(value, float)}
    print(json.dumps({**shown, "seconds": round(result.seconds, 2), "parameters": result.num_parameters,
                      "lr": result.lr, "batch": result.batch}))
    print(f"written: {', '.join(str(p) for p in paths.values())}")
    return 0
