#!/usr/bin/env python
"""Benchmark the field zoo: (a) 2D image fitting at one parameter budget, (b) radiance fields.

(a) Every field fits the same images (scikit-image's ``camera`` and ``astronaut``, and
``images/albert.exr`` from the shared data) at the same parameter budget and step count; PSNR
is measured on the whole image after each entry of ``--steps``. Widths are chosen per field so
its parameter count comes closest to ``--budget`` without exceeding it.
(b) Every registered field trains on lego at ``--downscale`` for a fixed CPU time budget per
field; validation PSNR, samples per second and parameter counts are reported.

Results go to ``--json`` and a markdown table ``--markdown`` (docs/bench_fields.{json,md}).
Full runs take hours on a 2-core CPU; shrink them with --size, --steps, --batch, --images,
--fields, --scene-seconds and --val-images. Example smoke test:

    python scripts/bench_fields.py --size 64 --steps 20,40 --images camera --scene-seconds 5 \\
        --val-images 1 --json /tmp/b.json --markdown /tmp/b.md
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralfields.config import load_preset  # noqa: E402
from neuralfields.fields import FIELDS, build_field, resolved_options  # noqa: E402
from neuralfields.fields.budget import fit_to_budget  # noqa: E402
from neuralfields.fit.image import FitConfig, fit_image  # noqa: E402
from neuralfields.fit.io import collapse_grey, read_signal_image, resize_longest  # noqa: E402

# Image-fitting entries: label -> (field, options, knob). The knob is the option path the budget
# search varies; every MLP-based entry uses 4 hidden layers so only the width differs.
MLP4 = {"layers": 4, "skips": []}
IMAGE_ENTRIES = {
    "relu-mlp (no encoding)": ("mlp", dict(MLP4), ("hidden",)),
    "nerf (PE + ReLU)": ("nerf", dict(MLP4), ("hidden",)),
    "siren": ("siren", dict(MLP4), ("hidden",)),
    "wire": ("wire", dict(MLP4), ("hidden",)),
    "wire-complex": ("wire-complex", dict(MLP4), ("hidden",)),
    "cam (relu-mlp)": ("cam", {"base": "mlp", "base_options": dict(MLP4)}, ("base_options", "hidden")),
    "cam (nerf)": ("cam", {"base": "nerf", "base_options": dict(MLP4)}, ("base_options", "hidden")),
    "cam (siren)": ("cam", {"base": "siren", "base_options": dict(MLP4), "norm": "none"}, ("base_options", "hidden")),
    "hashgrid + siren": ("mlp", {"encoding": "hashgrid", "backbone": "siren", "hidden": 64, "layers": 2, "lr": 1e-3,
                                 "encoding_options": {"n_levels": 12, "max_res": 512}},
                         ("encoding_options", "log2_table")),
    "ngp": ("ngp", {"max_res": 512}, ("log2_table",)),
    "triplane": ("triplane", {}, ("n_features",)),
}
KNOB_RANGES = {"hidden": range(8, 1025), "log2_table": range(8, 23), "n_features": range(1, 129)}

# Radiance-field entries: CPU-sized options per field (the scenes/demo-*.toml presets use the same).
SCENE_ENTRIES = {
    "ngp": ("ngp", None),  # the lego preset's options
    "nerf": ("nerf", {"hidden": 128, "layers": 4, "skips": [2], "color_hidden": 64}),
    "siren": ("siren", {"hidden": 128, "layers": 4, "color_hidden": 64, "backbone_options": {"first_omega": 10.0}}),
    "wire": ("wire", {"hidden": 128, "layers": 3, "color_hidden": 64, "backbone_options": {"omega": 5.0, "sigma": 2.0}}),
    "wire-complex": ("wire-complex", {"hidden": 128, "layers": 3, "color_hidden": 64,
                                      "backbone_options": {"omega": 5.0, "sigma": 2.0}}),
    "cam (nerf)": ("cam", {"base": "nerf", "base_options": {"hidden": 128, "layers": 4, "skips": [2], "color_hidden": 64}}),
    "triplane": ("triplane", None),
}

# Published reference (CAM paper, Table 1: natural 512x512 images, 2000 steps).
CAM_PAPER = {"FFN (Fourier features + ReLU MLP)": 30.30, "FFN + CAM": 32.21}


def count_2d(field: str, options: dict, channels: int) -> int:
    return build_field(field, options, in_dim=2, view_dependent=False, out_dim=channels).num_parameters


def fit_budget(field: str, options: dict, knob: tuple[str, ...], budget: int, channels: int) -> tuple[dict, int]:
    """Largest knob value whose field stays within ``budget`` parameters."""
    return fit_to_budget(lambda opts: count_2d(field, opts, channels), options, knob, list(KNOB_RANGES[knob[-1]]), budget)


def load_images(names: list[str], size: int, data: Path) -> dict[str, np.ndarray]:
    import skimage.data

    images = {}
    for name in names:
        if name == "albert":
            path = data / "images" / "albert.exr"
            if not path.exists():
                print(f"skipping albert: {path} not found", file=sys.stderr)
                continue
            img = collapse_grey(read_signal_image(path))
        else:
            raw = getattr(skimage.data, name)()
            img = raw.astype(np.float32) / 255.0
            img = img[..., None] if img.ndim == 2 else img[..., :3]
        h, w = img.shape[:2]
        side = min(h, w)  # centre square crop, then area-resize to size x size
        img = img[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
        images[name] = resize_longest(np.ascontiguousarray(img), size)
    return images


def bench_images(args) -> list[dict]:
    images = load_images(args.images, args.size, args.data)
    steps = sorted(args.steps)
    rows = []
    for label in args.image_fields:
        field, options, knob = IMAGE_ENTRIES[label]
        if field not in FIELDS:
            print(f"skipping {label}: field '{field}' is not registered", file=sys.stderr)
            continue
        for name, img in images.items():
            try:
                opts, n_params = fit_budget(field, options, knob, args.budget, img.shape[-1])
                cfg = FitConfig(steps=steps[-1], batch=args.batch, eval_steps=steps, seed=args.seed)
                res = fit_image(img, field, opts, cfg, progress=args.progress)
            except Exception as exc:  # one broken field must not sink the whole benchmark
                traceback.print_exc()
                rows.append({"entry": label, "field": field, "image": name, "error": f"{type(exc).__name__}: {exc}"})
                continue
            row = {"entry": label, "field": field, "image": name, "size": list(img.shape), "parameters": n_params,
                   "lr": res.lr, "batch": res.batch, "options": opts,
                   "psnr": {str(c["step"]): c["psnr"] for c in res.checkpoints},
                   "seconds": {str(c["step"]): c["seconds"] for c in res.checkpoints}, "ssim": res.ssim}
            rows.append(row)
            print(f"[image] {label:24s} {name:10s} params={n_params:7d} " +
                  " ".join(f"psnr@{k}={v:.2f}" for k, v in row["psnr"].items()) + f" t={res.seconds:.1f}s", flush=True)
    return rows


def bench_scenes(args) -> list[dict]:
    from neuralfields.data import load_data
    from neuralfields.scoring import score_model, spread_indices
    from neuralfields.train.scene import scene_trainer

    base = load_preset("lego")
    base.data.path = str(args.data / "nerf_synthetic" / "lego")
    base.data.downscale = args.downscale
    if not Path(base.data.path).is_dir():
        print(f"skipping radiance fields: {base.data.path} not found", file=sys.stderr)
        return []
    train, val = load_data(base.data, "train"), load_data(base.data, "val")
    rows = []
    for label in args.scene_fields:
        field, options = SCENE_ENTRIES[label]
        if field not in FIELDS:
            print(f"skipping {label}: field '{field}' is not registered", file=sys.stderr)
            continue
        cfg = copy.deepcopy(base)
        if field != cfg.field.name:
            cfg.field.name, cfg.field.options = field, {}
        if options is not None:
            cfg.field.options = copy.deepcopy(options)
        cfg.train.steps = 10**9
        cfg.train.time_budget = args.scene_seconds  # ends training and paces the lr schedule
        cfg.train.eval_every = 0
        cfg.train.checkpoint_every = 0
        try:
            lr = resolved_options(field, cfg.field.options).get("lr")
            if field == "cam" and lr is None:
                lr = resolved_options(cfg.field.options.get("base", "nerf"), cfg.field.options.get("base_options")).get("lr")
            if lr is not None:
                cfg.train.lr = lr
            trainer = scene_trainer(cfg, train, val, None, progress=False, log=lambda _: None)
            samples, steps = 0, 0
            while trainer.train_seconds < args.scene_seconds:
                start = time.perf_counter()
                stats = trainer.train_step()
                trainer.train_seconds += time.perf_counter() - start
                samples += stats["n_samples"]
                steps += 1
            result = score_model(trainer.model, val, spread_indices(len(val), args.val_images))
        except Exception as exc:
            traceback.print_exc()
            rows.append({"entry": label, "field": field, "error": f"{type(exc).__name__}: {exc}"})
            continue
        row = {"entry": label, "field": field, "parameters": trainer.model.field.num_parameters, "lr": cfg.train.lr,
               "steps": steps, "seconds": trainer.train_seconds, "samples_per_second": samples / max(trainer.train_seconds, 1e-9),
               "val_psnr": result["psnr"], "val_ssim": result["ssim"], "val_images": len(result["images"]),
               "options": resolved_options(field, cfg.field.options)}
        rows.append(row)
        print(f"[scene] {label:14s} params={row['parameters']:8d} steps={steps} val={row['val_psnr']:.2f} "
              f"samples/s={row['samples_per_second']:.0f}", flush=True)
    return rows


def markdown(report: dict) -> str:
    a = report["args"]
    lines = ["# Field zoo benchmark", "",
             f"Generated by `scripts/bench_fields.py` on {report['machine']} ({report['threads']} torch threads); "
             "seconds are wall-clock optimisation time (evaluation excluded) and depend on machine load.", ""]
    if report["images"]:
        steps = [str(s) for s in sorted(a["steps"])]
        batch = "whole image" if a["batch"] <= 0 else f"{a['batch']} random pixels"
        lines += ["## (a) Image fitting", "",
                  f"{a['size']}x{a['size']} centre crops, parameter budget {a['budget']:,}, batch: {batch} per step, "
                  "Adam at each field's recommended rate decaying exponentially to 0.1x; PSNR on the whole image.", "",
                  "| entry | image | parameters | " + " | ".join(f"PSNR @{s}" for s in steps) + f" | seconds @{steps[-1]} |",
                  "|---|---|---:|" + "---:|" * len(steps) + "---:|"]
        for r in report["images"]:
            if "error" in r:
                lines.append(f"| {r['entry']} | {r['image']} | - | " + " | ".join("-" for _ in steps) + f" | error: {r['error'][:60]} |")
                continue
            psnrs = " | ".join(f"{r['psnr'].get(s, float('nan')):.2f}" for s in steps)
            lines.append(f"| {r['entry']} | {r['image']} | {r['parameters']:,} | {psnrs} | {r['seconds'][steps[-1]]:.1f} |")
        lines += ["", "Published reference (CAM paper, natural 512x512 images, 2000 steps): " +
                  ", ".join(f"{k}: {v:.2f} dB" for k, v in CAM_PAPER.items()) + ".", ""]
    if report["scenes"]:
        lines += ["## (b) Radiance fields", "",
                  f"lego at --downscale {a['downscale']}, {a['scene_seconds']:g} s of training per field, "
                  f"validation PSNR over {a['val_images']} images.", "",
                  "| entry | parameters | steps | samples/s | val PSNR | val SSIM |", "|---|---:|---:|---:|---:|---:|"]
        for r in report["scenes"]:
            if "error" in r:
                lines.append(f"| {r['entry']} | - | - | - | - | error: {r['error'][:60]} |")
                continue
            lines.append(f"| {r['entry']} | {r['parameters']:,} | {r['steps']} | {r['samples_per_second']:,.0f} | "
                         f"{r['val_psnr']:.2f} | {r['val_ssim']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["images", "scenes", "all"], default="all")
    p.add_argument("--images", type=lambda s: s.split(","), default=["camera", "astronaut", "albert"])
    p.add_argument("--image-fields", type=lambda s: s.split(","), default=list(IMAGE_ENTRIES),
                   help=f"comma-separated entries among: {', '.join(IMAGE_ENTRIES)}")
    p.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    p.add_argument("--steps", type=lambda s: [int(v) for v in s.split(",")], default=[500, 2000],
                   help="comma-separated step counts at which PSNR is measured; the last is the total")
    p.add_argument("--batch", type=int, default=0, help="random pixels per step (0: the whole image)")
    p.add_argument("--budget", type=int, default=200_000, help="parameter budget for image fitting")
    p.add_argument("--scene-fields", type=lambda s: s.split(","), default=list(SCENE_ENTRIES),
                   help=f"comma-separated entries among: {', '.join(SCENE_ENTRIES)}")
    p.add_argument("--scene-seconds", type=float, default=120.0, help="training seconds per radiance field")
    p.add_argument("--downscale", type=float, default=4.0)
    p.add_argument("--val-images", type=int, default=4)
    p.add_argument("--data", type=Path, default=Path(os.environ.get("NEURALFIELDS_DATA", ROOT.parent / "shared" / "data")))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true", help="progress bars")
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "bench_fields.json")
    p.add_argument("--markdown", type=Path, default=ROOT / "docs" / "bench_fields.md")
    args = p.parse_args(argv)
    for label in args.image_fields:
        if label not in IMAGE_ENTRIES:
            p.error(f"--image-fields: unknown entry '{label}'")
    for label in args.scene_fields:
        if label not in SCENE_ENTRIES:
            p.error(f"--scene-fields: unknown entry '{label}'")
    report = {"machine": " ".join(filter(None, [platform.machine(), platform.processor(), f"{os.cpu_count()} cores"])),
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "args": {k: (v.name if isinstance(v, Path) else v) for k, v in vars(args).items()},  # no machine paths
              "cam_paper": CAM_PAPER, "images": [], "scenes": []}
    if args.part in ("images", "all"):
        report["images"] = bench_images(args)
    if args.part in ("scenes", "all"):
        report["scenes"] = bench_scenes(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(markdown(report))
    print(f"written {args.json} and {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
