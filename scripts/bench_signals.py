#!/usr/bin/env python
"""Benchmark the fields on the seed papers' signals: audio, video, a shape and an image.

One row per field, one column per signal: SIREN's Bach clip (``audio/gt_bach.wav``), the bikes
video (``video/bikes.mp4``), the Stanford bunny's occupancy (``meshes/bunny.obj``) and
scikit-image's ``camera``, each cut to ``--audio-seconds``, ``--video-frames`` x ``--video-size``,
``--shape-size``^3 and ``--image-size``^2. Every cell fits with the field's options for that
signal (``neuralfields fit``'s per-signal defaults), a width chosen so that the field comes
closest to the column's parameter budget without exceeding it, random batches of ``--batch``
samples and ``--seconds`` of optimisation, once with uniform batches and once with INT.
Results go to ``--json`` and a markdown table ``--markdown`` (docs/bench_signals.{json,md}).
Smoke test:

    python scripts/bench_signals.py --seconds 2 --fields siren,ngp --json /tmp/b.json --markdown /tmp/b.md
"""

from __future__ import annotations

import argparse
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

from neuralfields.fields import FIELDS  # noqa: E402
from neuralfields.fields.budget import fit_to_budget  # noqa: E402
from neuralfields.fit.fitting import FitConfig, build_signal_field, fit_signal, signal_options  # noqa: E402
from neuralfields.fit.signals import ReadOptions, Signal, read_signal  # noqa: E402
from neuralfields.fit.signals.image import ImageSignal  # noqa: E402

# label -> (field, options, knob): the knob is the option the budget search varies. MLP entries
# have 3 hidden layers (SIREN's audio network; WIRE's occupancy network has 2), so only the width differs.
MLP3 = {"layers": 3, "skips": []}
ENTRIES = {
    "nerf (ReLU+PE)": ("nerf", dict(MLP3), ("hidden",)),
    "siren": ("siren", dict(MLP3), ("hidden",)),
    "wire": ("wire", dict(MLP3), ("hidden",)),
    "wire-complex": ("wire-complex", dict(MLP3), ("hidden",)),
    "cam (nerf)": ("cam", {"base": "nerf", "base_options": dict(MLP3), "resolution_3d": 32}, ("base_options", "hidden")),
    "cam (siren)": ("cam", {"base": "siren", "base_options": dict(MLP3), "norm": "none", "resolution_3d": 32},
                    ("base_options", "hidden")),
    "cam (wire)": ("cam", {"base": "wire", "base_options": dict(MLP3), "resolution_3d": 32}, ("base_options", "hidden")),
    "ngp": ("ngp", {}, ("log2_table",)),
    # K-Planes' planes at three resolutions (finest/4, /2, finest, the default's ratios) with 4 channels
    # (16 by default): at 50,000 parameters 16 channels leave 3D planes of 26 cells a side.
    "triplane": ("triplane", {"n_features": 4}, ("resolutions",)),
}
KNOB_RANGES = {"hidden": range(4, 1025), "log2_table": range(4, 23),
               "resolutions": [[max(2, r // 4), r // 2, r] for r in range(8, 1025, 2)]}
SELECTIONS = ("uniform", "int")
NOTES = "## Reading these tables"
# What each column reports first, and its secondary scores.
HEADLINE = {"audio": "psnr", "video": "psnr", "shape": "iou", "image": "psnr"}
SECONDARY = {"audio": ["snr"], "video": ["ssim"], "shape": ["chamfer", "psnr"], "image": ["ssim"]}


def count(signal, field: str, options: dict) -> int:
    return build_signal_field(signal, field, signal_options(signal, field, options)).num_parameters


def load_signals(args) -> dict:
    import skimage.data

    data = args.data
    signals = {}
    sources = {"audio": (data / "audio" / "gt_bach.wav", ReadOptions(seconds=args.audio_seconds)),
               "video": (data / "video" / "bikes.mp4", ReadOptions(frames=args.video_frames, size=args.video_size)),
               "shape": (data / "meshes" / "bunny.obj", ReadOptions(size=args.shape_size))}
    for kind in args.signals:
        if kind == "image":
            camera = skimage.data.camera().astype(np.float32)[..., None] / 255.0
            from neuralfields.fit.io import resize_longest

            signals[kind] = ImageSignal(resize_longest(camera, args.image_size), "skimage.data.camera()")
            continue
        path, options = sources[kind]
        if not path.exists():
            print(f"skipping {kind}: {path} not found (set NEURALFIELDS_DATA)", file=sys.stderr)
            continue
        signals[kind] = read_signal(path, options)
        signals[kind].source = path.relative_to(data).as_posix()  # no machine paths in the report
    return signals


def bench(args, signals: dict) -> list[dict]:
    rows = []
    for label in args.fields:
        field, options, knob = ENTRIES[label]
        if field not in FIELDS:
            print(f"skipping {label}: field '{field}' is not registered", file=sys.stderr)
            continue
        for kind, signal in signals.items():
            budget = args.budget[kind]
            try:
                opts, n_params = fit_to_budget(lambda o: count(signal, field, o), options, knob,
                                               list(KNOB_RANGES[knob[-1]]), budget)
                # A few untimed steps on a tiny signal of the same dimensions first: the hash grid's
                # compiled index function would otherwise spend the cell's time budget on compiling.
                side = int(np.ceil((2 * args.batch) ** (1 / signal.in_dim)))  # room for batches of the real size
                tiny = Signal(np.zeros((side,) * signal.in_dim + (signal.out_dim,), np.float32))
                fit_signal(tiny, field, signal_options(signal, field, opts), FitConfig(steps=3, batch=args.batch),
                           progress=False)
            except Exception as exc:  # a field that cannot take this signal's dimension: one line in the table
                rows.append({"entry": label, "field": field, "signal": kind, "error": f"{type(exc).__name__}: {exc}"})
                print(f"[{kind}] {label:16s} cannot fit: {exc}", flush=True)
                continue
            for selection in SELECTIONS:
                cfg = FitConfig(steps=10**9, batch=args.batch, time_budget=args.seconds, selection=selection, seed=args.seed)
                try:
                    res = fit_signal(signal, field, opts, cfg, progress=args.progress)
                except Exception as exc:  # one broken cell must not sink the benchmark
                    traceback.print_exc()
                    rows.append({"entry": label, "field": field, "signal": kind, "selection": selection,
                                 "error": f"{type(exc).__name__}: {exc}"})
                    continue
                row = {"entry": label, "field": field, "signal": kind, "selection": selection, "parameters": n_params,
                       "steps": res.steps, "seconds": res.seconds, "lr": res.lr, "batch": res.batch,
                       "options": res.options, "scores": res.scores}
                rows.append(row)
                shown = " ".join(f"{k}={v:.4g}" for k, v in res.scores.items() if isinstance(v, float))
                print(f"[{kind}] {label:16s} {selection:8s} params={n_params:7d} steps={res.steps:5d} {shown}", flush=True)
    return rows


def fmt(value, key: str) -> str:
    if value is None:
        return "none"
    return f"{value:.3f}" if key in ("iou", "ssim") else f"{value:.4f}" if key == "chamfer" else f"{value:.2f}"


def cell(rows: list[dict], label: str, kind: str, key: str) -> str:
    """``uniform / INT`` of score ``key``; an error as its first words."""
    found = {r.get("selection"): r for r in rows if r["entry"] == label and r["signal"] == kind}
    if not found:
        return "-"
    if None in found:  # the field cannot take the signal at all
        return "n/a"
    return " / ".join(fmt(found[s]["scores"].get(key), key) if s in found and "scores" in found[s] else "error"
                      for s in SELECTIONS)


def steps(rows: list[dict], label: str, kind: str) -> str:
    found = {r.get("selection"): r.get("steps") for r in rows if r["entry"] == label and r["signal"] == kind}
    return "n/a" if None in found or not found else " / ".join(str(found.get(s, "-")) for s in SELECTIONS)


def write_markdown(report: dict, path: Path) -> None:
    """The tables of ``report``; the hand-written reading survives a re-run (everything from NOTES on)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    notes = path.read_text().partition(NOTES) if path.exists() else ("", "", "")
    path.write_text(markdown(report) + (f"\n{NOTES}{notes[2]}" if notes[1] else ""))


def markdown(report: dict) -> str:
    a, rows = report["args"], report["rows"]
    kinds = [k for k in a["signals"] if k in report["signals"]]
    labels = list(dict.fromkeys(r["entry"] for r in rows))
    names = {"audio": "Bach (audio)", "video": "bikes (video)", "shape": "bunny (shape)", "image": "camera (image)"}
    units = {"psnr": "PSNR dB", "iou": "IoU", "ssim": "SSIM", "snr": "SNR dB", "chamfer": "Chamfer"}
    lines = ["# Fitting signals: audio, video, a shape, an image", "",
             f"Generated by `scripts/bench_signals.py` on {report['machine']} ({report['threads']} torch threads), "
             f"{a['seconds']:g} s of optimisation per cell (evaluation excluded), random batches of {a['batch']:,} "
             "samples, each field's recommended rate (or the signal's default for it) decaying exponentially to 0.1x "
             "over the time budget. Every cell: **uniform / INT** batches.", "",
             "| column | signal | samples | parameter budget |", "|---|---|---|---:|"]
    for kind in kinds:
        s = report["signals"][kind]
        lines.append(f"| {names[kind]} | {s['description']} | {s['samples']:,} | {a['budget'][kind]:,} |")
    lines += ["", "## Headline scores", "",
              "| field | " + " | ".join(f"{names[k]}: {units[HEADLINE[k]]}" for k in kinds) + " |",
              "|---|" + "---:|" * len(kinds)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(cell(rows, label, k, HEADLINE[k]) for k in kinds) + " |")
    extra = [(k, key) for k in kinds for key in SECONDARY[k]]
    lines += ["", "## Secondary scores and parameters", "",
              "| field | " + " | ".join(f"{names[k]}: {units[key]}" for k, key in extra) + " | "
              + " | ".join(f"{names[k]}: parameters" for k in kinds) + " |",
              "|---|" + "---:|" * (len(extra) + len(kinds))]
    for label in labels:
        params = []
        for k in kinds:
            found = [r for r in rows if r["entry"] == label and r["signal"] == k and "parameters" in r]
            params.append(f"{found[0]['parameters']:,}" if found else "-")
        lines.append(f"| {label} | " + " | ".join(cell(rows, label, k, key) for k, key in extra) + " | "
                     + " | ".join(params) + " |")
    lines += ["", "## Steps taken in the time budget", "",
              "| field | " + " | ".join(names[k] for k in kinds) + " |", "|---|" + "---:|" * len(kinds)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(steps(rows, label, k) for k in kinds) + " |")
    errors = {(r["entry"], r["signal"]): r["error"] for r in rows if "error" in r}
    if errors:
        lines += ["", "Cells marked n/a or error:", ""]
        lines += [f"- {label} on {kind}: `{error}`" for (label, kind), error in errors.items()]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fields", type=lambda s: s.split(","), default=list(ENTRIES),
                   help=f"comma-separated entries among: {', '.join(ENTRIES)}")
    p.add_argument("--signals", type=lambda s: s.split(","), default=["audio", "video", "shape", "image"])
    p.add_argument("--seconds", type=float, default=20.0, help="optimisation seconds per cell")
    p.add_argument("--batch", type=int, default=4096, help="random samples per step")
    p.add_argument("--budget", type=json.loads, default={"audio": 50_000, "video": 50_000, "shape": 50_000, "image": 50_000},
                   help="parameter budget per column, as JSON")
    p.add_argument("--audio-seconds", type=float, default=2.0, help="seconds of the Bach clip (from its start)")
    p.add_argument("--video-frames", type=int, default=24, help="first frames of the bikes clip")
    p.add_argument("--video-size", type=int, default=128, help="longest side of the bikes frames")
    p.add_argument("--shape-size", type=int, default=64, help="grid cells a side for the bunny")
    p.add_argument("--image-size", type=int, default=256, help="side of the camera image")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("NEURALFIELDS_DATA", ROOT.parent / "shared" / "data")))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true", help="progress bars")
    p.add_argument("--markdown-only", action="store_true", help="rewrite --markdown from --json, run nothing")
    p.add_argument("--merge", action="store_true",
                   help="re-run --fields only: replace their rows in an existing --json, keep the others")
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "bench_signals.json")
    p.add_argument("--markdown", type=Path, default=ROOT / "docs" / "bench_signals.md")
    args = p.parse_args(argv)
    for label in args.fields:
        if label not in ENTRIES:
            p.error(f"--fields: unknown entry '{label}'")
    if args.markdown_only:
        write_markdown(json.loads(args.json.read_text()), args.markdown)
        print(f"written {args.markdown}")
        return 0
    start = time.perf_counter()
    signals = load_signals(args)
    report = {"machine": " ".join(filter(None, [platform.machine(), f"{os.cpu_count()} cores"])),
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "args": {k: (v.name if isinstance(v, Path) else v) for k, v in vars(args).items()},  # no machine paths
              "signals": {k: {"description": s.describe(), "samples": s.count, **s.record()} for k, s in signals.items()},
              "rows": bench(args, signals), "wall_seconds": time.perf_counter() - start}
    if args.merge and args.json.exists():  # keep the other entries' rows of the previous run
        previous = json.loads(args.json.read_text())
        rows = [r for r in previous["rows"] if r["entry"] not in args.fields] + report["rows"]
        report["rows"] = sorted(rows, key=lambda r: list(ENTRIES).index(r["entry"]))
        report["rerun"] = previous.get("rerun", []) + [{"fields": args.fields, "wall_seconds": report["wall_seconds"]}]
        report["wall_seconds"], report["args"] = previous["wall_seconds"], previous["args"]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    write_markdown(report, args.markdown)
    print(f"written {args.json} and {args.markdown} ({report['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
