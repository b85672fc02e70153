"""Latency of one novel view through the viewer's HTTP API (gradio_client) on the CPU.

    python scripts/bench_viewer.py [--lego RUN] [--demo RUN] [--repeats 12] [--resolution 256]
                                   [--threads N] [--out docs/bench_viewer.json]

For each run the viewer is started on a free localhost port; after one warm-up render, ``repeats``
renders of a square rgb view at evenly spread azimuths are timed from the request to the first
(preview) image and to the final image; p50 and p95 of both go to the JSON file with the
machine's load average, since a busy machine inflates every figure.

* lego: only with ``--lego RUN`` (a trained lego run folder); otherwise skipped with a message.
* demo: ``--demo RUN``, or else a short training of the built-in demo scene in a temporary folder.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(values: list[float]) -> dict:
    a = np.asarray(values)
    return {"p50": round(float(np.percentile(a, 50)), 4), "p95": round(float(np.percentile(a, 95)), 4),
            "mean": round(float(a.mean()), 4), "n": len(values)}


def time_renders(run: Path, side: int, repeats: int, threads: int | None) -> dict:
    """Start a viewer on ``run`` and time ``repeats`` renders of a ``side``-pixel rgb view."""
    run = run.resolve()  # the viewer names a run folder after its resolved name
    from gradio_client import Client

    from viewer import ViewerConfig, launch

    config = ViewerConfig(max_resolution=max(side, 256), threads=threads)
    demo, url = launch(run, port=free_port(), block=False, config=config)
    try:
        client = Client(url, verbose=False)
        client.predict(run.name, api_name="/load_run")
        elevation, fov = 20.0, 40.0
        client.predict(run.name, 0.0, elevation, 1.0, fov, side, "rgb", 0.0, api_name="/render")  # warm-up
        first, final = [], []
        for azimuth in np.linspace(-180, 180, repeats, endpoint=False):
            start = time.perf_counter()
            job = client.submit(run.name, float(azimuth), elevation, 1.0, fov, side, "rgb", 0.0, api_name="/render")
            while not job.outputs() and not job.done():
                time.sleep(0.002)
            first.append(time.perf_counter() - start)
            job.result()
            final.append(time.perf_counter() - start)
        return {"run": run.name, "resolution": [side, side], "first_image_s": percentiles(first),
                "final_image_s": percentiles(final)}
    finally:
        demo.close()


def train_demo(folder: Path, steps: int) -> Path:
    from neuralfields.cli import main

    out = folder / "demo"
    code = main(["train", "--steps", str(steps), "--output", str(out), "--no-progress"])
    if code != 0:
        raise SystemExit(f"training the demo run failed (exit {code})")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lego", type=Path, help="a trained lego run folder (skipped without it)")
    p.add_argument("--demo", type=Path, help="a trained demo run folder (default: train one briefly)")
    p.add_argument("--demo-steps", type=int, default=300, help="steps when training the demo run here")
    p.add_argument("--repeats", type=int, default=12)
    p.add_argument("--resolution", type=int, default=256, help="side of the square view in pixels")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench_viewer.json")
    args = p.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)  # also for training the demo run here
    result = {"device": "cpu", "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "python": platform.python_version(), "torch": torch.__version__, "repeats": args.repeats,
              "load_average_start": [round(x, 2) for x in os.getloadavg()], "runs": {}}
    if args.lego is None:
        print("lego: skipped (no run folder given; pass --lego RUN after `neuralfields train --scene lego`)")
        result["runs"]["lego"] = {"skipped": "no lego run folder given (--lego RUN)"}
    else:
        result["runs"]["lego"] = time_renders(args.lego, args.resolution, args.repeats, args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-viewer-") as tmp:
        demo = args.demo or train_demo(Path(tmp), args.demo_steps)
        result["runs"]["demo"] = time_renders(demo, args.resolution, args.repeats, args.threads)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]

    for name, r in result["runs"].items():
        if "skipped" not in r:
            first, final = r["first_image_s"], r["final_image_s"]
            print(f"{name}: {args.resolution}x{args.resolution} view, first image p50 {first['p50']:.3f} s "
                  f"p95 {first['p95']:.3f} s; final p50 {final['p50']:.3f} s p95 {final['p95']:.3f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # the viewer package sits beside neuralfields/
    sys.exit(main())
