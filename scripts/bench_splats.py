"""Benchmark the splat rasteriser: one view forward (and forward + backward) at a few sizes.

The scene is synthetic so the figures need no data: ``N`` Gaussians on the surface of a unit
sphere (a shell 5% thick), sized by their spacing (0.7 of it, log-normal spread), randomly
rotated, opacity 0.5, SH degree 3, seen from 3.2 units with a 40 degree field of view, so most
pixels see two to a few layers of surface, as an object capture does. Each figure is the median
of ``--repeats`` runs after one warm-up.

    python scripts/bench_splats.py [--gaussians 100000] [--sizes 200,800] [--repeats 3] [--device cpu]
                                   [--backend auto] [--out docs/bench_splats.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time

import torch

from neuralfields.cameras import Cameras, look_at
from neuralfields.splats import GaussianScene, RasterSettings, rasterize
from neuralfields.splats.rasterize import choose_backend


def sphere_scene(n: int, seed: int = 0) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(n, 3, generator=g)
    pts = pts / pts.norm(dim=-1, keepdim=True) * (1 + 0.05 * torch.rand(n, 1, generator=g))
    spacing = math.sqrt(4 * math.pi / n)
    scene = GaussianScene.from_points(pts, torch.rand(n, 3, generator=g), scales=torch.full((n,), 0.7 * spacing),
                                      opacity=0.5)
    with torch.no_grad():
        scene.log_scales.add_(torch.randn(n, 3, generator=g) * 0.3)
        scene.quats.copy_(torch.randn(n, 4, generator=g))
        scene.sh_rest.normal_(0, 0.05, generator=g)
    return scene


def camera(size: int) -> Cameras:
    c2w = look_at(torch.tensor([0.0, -3.0, 1.0]), torch.zeros(3), torch.tensor([0.0, 0, 1]))
    f = size / (2 * math.tan(math.radians(20)))
    return Cameras.create(c2w, f, f, size / 2, size / 2, size, size)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gaussians", type=int, default=100_000)
    ap.add_argument("--sizes", default="200,800")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out", default="docs/bench_splats.json")
    args = ap.parse_args()
    device = torch.device(args.device)
    scene = sphere_scene(args.gaussians).to(device)
    settings = RasterSettings(backend=args.backend)
    backend = choose_backend(args.backend, device).render.__name__
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        cams, bg = camera(size), torch.ones(3)

        def forward():
            with torch.no_grad():
                return rasterize(scene.gaussians(), cams, 0, bg, settings)

        def forward_backward():
            out = rasterize(scene.gaussians(), cams, 0, bg, settings)
            out.rgb.mean().backward()
            scene.zero_grad()

        row = {"size": size, "forward_s": round(timed(forward, device, args.repeats), 3),
               "forward_backward_s": round(timed(forward_backward, device, args.repeats), 3),
               "covered": round(float(forward().alpha.mean()), 3)}
        rows.append(row)
        print(json.dumps(row))
    result = {"gaussians": args.gaussians, "device": str(device), "backend": backend,
              "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.processor() or
              platform.machine(), "repeats": args.repeats, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
