"""Benchmark ``neuralfields process`` on real captures: time per stage, images registered, reprojection error.

    python scripts/bench_process.py                      # cup photos (77, 800x600) + bird video (150 of 184 frames)
    python scripts/bench_process.py --cases cup --max-image-size 400   # quicker

Cases:

* ``cup``: the 77 photos of ``captures/cup/images`` at full size (800x600), exhaustive matching;
* ``bird``: the 184 frames of ``captures/bird/images`` written as an H.264 mp4 first (24 fps), then
  processed as a video: 150 frames kept (the sharpest of each window), sequential matching with
  loop closure.

Camera centres are also compared with the COLMAP model shipped with each capture, after the best
similarity (Umeyama): the error is relative to the RMS spread of the shipped camera centres.
Results go to ``docs/bench_process.json`` and ``docs/bench_process.md``; only folder names are
recorded, never absolute paths.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralfields.config import expand_data_path  # noqa: E402
from neuralfields.data.colmap_model import colmap_to_c2w, read_model  # noqa: E402
from neuralfields.data.images import read_image  # noqa: E402
from neuralfields.data.normalize import transform_points, umeyama  # noqa: E402
from neuralfields.export.video import write_video  # noqa: E402
from neuralfields.process import ProcessConfig, SfmOptions, process_capture  # noqa: E402
from neuralfields.process.frames import find_photos  # noqa: E402
from neuralfields.process.write import read_capture  # noqa: E402

CASES = ("cup", "bird")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default="${NEURALFIELDS_DATA}/captures", help="folder holding cup/ and bird/")
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    p.add_argument("--max-image-size", type=int, default=1600, help="as in process (default 1600: full size here)")
    p.add_argument("--frames", type=int, default=150, help="bird video: frames kept (default 150)")
    p.add_argument("--json", default=str(ROOT / "docs" / "bench_process.json"))
    p.add_argument("--markdown", default=str(ROOT / "docs" / "bench_process.md"))
    return p.parse_args(argv)


def reference_error(model_dir: Path, reference_dir: Path, frame_names: dict[str, str] | None = None) -> dict:
    """Camera-centre error against the shipped model after the best similarity (mean, max)."""
    ours = read_capture(model_dir)
    _, images, _ = read_model(reference_dir)
    ref = {im.name: colmap_to_c2w(im.qvec, im.tvec)[:3, 3] for im in images.values()}
    names = [frame_names[n] if frame_names else n for n in ours.names]
    a, b = ours.c2w[:, :3, 3], np.stack([ref[n] for n in names])
    err = np.linalg.norm(transform_points(a, umeyama(a, b)) - b, axis=1)
    spread = np.sqrt(((b - b.mean(0)) ** 2).sum(1).mean())
    return {"mean": round(float(err.mean() / spread), 4), "max": round(float(err.max() / spread), 4)}


def run_case(name: str, root: Path, work: Path, args: argparse.Namespace) -> dict:
    capture = root / name
    sfm = SfmOptions(max_image_size=args.max_image_size)
    if name == "bird":
        photos = find_photos(capture / "images")
        video = work / "bird.mp4"
        write_video((read_image(p) for p in photos), video, fps=24)
        source, cfg = video, ProcessConfig(frames=args.frames, sfm=sfm)
    else:
        source, cfg = capture / "images", ProcessConfig(sfm=sfm)
    start = time.perf_counter()
    result = process_capture(source, work / f"{name}-dataset", cfg, progress=True)
    total = time.perf_counter() - start
    entry = {
        "input": f"{capture.name}/{'images (as mp4)' if name == 'bird' else 'images'}",
        "matcher": "sequential" if name == "bird" else "exhaustive",
        "images": result.n_images, "registered": result.registered, "models": result.model_sizes,
        "mean_reprojection_error_px": round(result.mean_reprojection_error, 3),
        "points": result.counts["points"], "pairs_matched": result.counts["pairs_matched"],
        "pairs_verified": result.counts["pairs_verified"], "scene_kind": result.scene_kind,
        "seconds": {k: round(v, 1) for k, v in result.seconds.items()}, "total_s": round(total, 1),
    }
    if name == "cup":
        entry["centre_error_vs_shipped_model"] = reference_error(result.output / "sparse" / "0", capture / "sparse" / "0")
    else:  # which photo each kept frame was is recovered from the pixels
        entry["centre_error_vs_shipped_model"] = reference_error(result.output / "sparse" / "0", capture / "sparse" / "0",
                                                                _bird_frame_names(result.output, photos))
    return entry


def _bird_frame_names(dataset: Path, photos: list[Path]) -> dict[str, str]:
    """Kept frame name -> original photo name, by nearest pixels within the frame's window."""
    kept = sorted((dataset / "images").iterdir())
    total, n = len(photos), len(kept)
    out = {}
    for k, frame in enumerate(kept):
        pixels = read_image(frame, 4).astype(np.float32)
        window = range(k * total // n, (k + 1) * total // n) if n < total else [k]
        errors = [np.abs(read_image(photos[i], 4).astype(np.float32) - pixels).mean() for i in window]
        out[frame.name] = photos[list(window)[int(np.argmin(errors))]].name
    return out


def load_note(load_at_start: float) -> str:
    """How to read the times: a start load above about one core means other jobs were running."""
    if load_at_start > 1.5:
        return "other jobs shared the cores during the run, so the times are upper bounds"
    return "nothing else ran; the load is the benchmark's own"


def markdown(report: dict) -> str:
    lines = ["# Processing benchmark (structure from motion with pycolmap, CPU)", "",
             "Written by `scripts/bench_process.py`; do not edit by hand. Command:", "",
             f"    python scripts/bench_process.py --max-image-size {report['max_image_size']}", "",
             f"Machine: {report['machine']}; 1-minute load average {report['load_average_start']:.1f} at the start, "
             f"{report['load_average_end']:.1f} at the end ({load_note(report['load_average_start'])}).", "",
             "| capture | images | registered | reproj. error (px) | points | matcher | verified pairs | "
             "frames/images s | features s | matching s | mapping s | writing s | total s | centre error (mean / max) |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in report["cases"].items():
        s = e["seconds"]
        err = e.get("centre_error_vs_shipped_model", {})
        lines.append(f"| {e['input']} | {e['images']} | {e['registered']} | {e['mean_reprojection_error_px']:.2f} | "
                     f"{e['points']} | {e['matcher']} | {e['pairs_verified']} / {e['pairs_matched']} | "
                     f"{s.get('frames', s.get('images', 0)):.1f} | {s.get('features', 0):.1f} | {s.get('matching', 0):.1f} | "
                     f"{s.get('mapping', 0):.1f} | {s.get('writing', 0):.1f} | {e['total_s']:.1f} | "
                     f"{err.get('mean', float('nan')):.3f} / {err.get('max', float('nan')):.3f} |")
    lines += ["", "Centre error: distance between our camera centres and those of the COLMAP model shipped with the "
              "capture, after the best similarity transform (Umeyama), relative to the RMS spread of the shipped "
              "centres. The shipped models calibrate every image separately; process shares one camera.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(expand_data_path(args.data_root))
    if not root.is_dir():
        print(f"captures not found under {args.data_root} (set NEURALFIELDS_DATA)", file=sys.stderr)
        return 1
    report = {"max_image_size": args.max_image_size, "frames": args.frames,
              "machine": f"{platform.machine()} {os.cpu_count()} cores", "load_average_start": os.getloadavg()[0],
              "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            report["cases"][name] = run_case(name, root, Path(tmp), args)
            print(json.dumps({name: report["cases"][name]}))
    report["load_average_end"] = os.getloadavg()[0]
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    Path(args.markdown).write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
