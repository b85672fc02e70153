"""Benchmark: data-parallel training on 1 vs N processes (torchrun, Gloo on CPUs, NCCL on GPUs).

For each scene and process count, starts ``torchrun --standalone --nproc-per-node N`` on this
script's worker mode, trains the scene's preset at the same per-rank batch (so N processes see
N times the rays per step) for a fixed amount of training time, and reports rays/s, samples/s,
the share of step time spent averaging gradients, and val PSNR at time marks (evaluation pauses
the clock). Writes JSON and a markdown table.

    python scripts/bench_distributed.py                          # demo scene (+ lego 200x200 when present)
    python scripts/bench_distributed.py --scenes demo --marks 10 20 --out /tmp/d.json
    python scripts/bench_distributed.py --device cuda --procs 1 2 4 8 --scenes lego --downscale 1

On the CPU the processes share the machine's cores (each of N processes gets cores/N threads),
so the CPU figures check correctness and overhead, not speed-up. Lego needs
``$NEURALFIELDS_DATA`` (default: ``shared/data`` beside the checkout); it is skipped without it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SCENES = {"demo": {"marks": [20, 40, 80], "downscale": None},  # seconds of training
          "lego": {"marks": [30, 60, 120], "downscale": 4}}


def worker(args: argparse.Namespace) -> int:
    """One rank: train for the last mark's seconds; rank 0 evaluates at the marks and writes JSON."""
    from neuralfields import distributed
    from neuralfields.config import apply_overrides, load_preset
    from neuralfields.data import load_data
    from neuralfields.scoring import score_model
    from neuralfields.train.scene import scene_trainer

    torch.set_num_threads(args.threads)
    device = distributed.start(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cfg = load_preset(args.scene)
    if args.downscale:
        cfg.data.downscale = args.downscale
    marks = sorted(args.marks)
    cfg.train.steps, cfg.train.time_budget = 10**9, marks[-1]  # the lr schedule paces by time
    cfg.train.eval_every = cfg.train.checkpoint_every = 0
    apply_overrides(cfg, args.set)
    with distributed.main_first():
        train, val = load_data(cfg.data, "train"), load_data(cfg.data, "val")
    loop = scene_trainer(cfg, train, val, None, progress=False, device=device)
    subset = sorted({int(round(k)) for k in np.linspace(0, len(val) - 1, min(args.eval_images, len(val)))})

    reduce_seconds = 0.0
    average = distributed.average_gradients

    def timed_average(params):  # the cost of gradient averaging (the loop calls it every step)
        nonlocal reduce_seconds
        sync()
        start = time.perf_counter()
        result = average(params)
        sync()
        reduce_seconds += time.perf_counter() - start
        return result

    distributed.average_gradients = timed_average
    loop.join_ranks()
    # The transfer alone: all-reduce a gradient-sized buffer with every rank already waiting.
    flat = torch.zeros(sum(p.numel() for p in loop.params), device=device)
    transfer = []
    for _ in range(6):
        distributed.barrier()
        sync()
        start = time.perf_counter()
        distributed.all_reduce_mean([flat])
        sync()
        transfer.append(time.perf_counter() - start)
    rows, rays, samples, pending = [], 0, 0, list(marks)
    while pending:
        sync()
        start = time.perf_counter()
        stats = loop.train_step()
        sync()
        loop.train_seconds += distributed.broadcast_float(time.perf_counter() - start)
        rays, samples = rays + stats["n_rays"], samples + stats["n_samples"]
        if loop.train_seconds >= pending[0]:
            mark = pending.pop(0)
            row = {"seconds": mark, "train_seconds": round(loop.train_seconds, 1), "steps": loop.step,
                   "rays_per_second": round(rays / loop.train_seconds),
                   "samples_per_second": round(samples / loop.train_seconds),
                   "allreduce_share": round(reduce_seconds / loop.train_seconds, 3)}
            if distributed.is_main():
                result = score_model(loop.model, val, subset)
                row.update(val_psnr=round(result["psnr"], 3), val_ssim=round(result["ssim"], 4))
                print(f"  {distributed.world_size()} proc  {mark:5.0f} s  step {loop.step:5d}  {row['rays_per_second']:7d} rays/s  "
                      f"all-reduce {100 * row['allreduce_share']:4.1f}%  val PSNR {row['val_psnr']:.2f} dB", flush=True)
            rows.append(row)
    if distributed.is_main():
        report = {"scene": args.scene, "processes": distributed.world_size(), "threads_per_process": args.threads,
                  "device": str(device), "resolution": [train.width, train.height], "field": cfg.field.name,
                  "num_parameters": loop.model.field.num_parameters, "per_rank_target_samples": cfg.train.target_samples,
                  "val_images": len(subset), "allreduce_ms": round(1000 * float(np.median(transfer[1:])), 1),
                  "marks": rows}
        Path(args.out).write_text(json.dumps(report, indent=2))
    distributed.barrier()
    distributed.stop()
    return 0


def run_case(scene: str, procs: int, marks: list[float], args: argparse.Namespace) -> dict:
    """Start ``procs`` ranks through torchrun and return rank 0's report."""
    cores = os.cpu_count() or 1
    threads = args.threads_per_process or (max(1, cores // procs) if args.device == "cpu" else 1)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
               __file__, "--worker", "--scene", scene, "--procs", str(procs), "--threads", str(threads),
               "--device", args.device, "--eval-images", str(args.eval_images), "--out", str(out),
               "--marks", *map(str, marks)]
        downscale = args.downscale or SCENES.get(scene, {}).get("downscale")
        if downscale:
            cmd += ["--downscale", str(downscale)]
        for item in args.set:
            cmd += ["--set", item]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        report = json.loads(out.read_text())
        report["wall_seconds"] = round(time.perf_counter() - start, 1)
        return report


def time_to(rows: list[dict], target: float) -> float | None:
    """Training seconds of the first mark whose val PSNR reaches ``target`` (None if none does)."""
    return next((r["train_seconds"] for r in rows if r.get("val_psnr", -1) >= target), None)


def markdown(cases: list[dict], targets: dict[str, float], note: str) -> str:
    lines = ["# Data-parallel training: 1 vs N processes", "", note, "",
             "Rays/s and samples/s are global (all ranks) and cumulative from the start of training. The "
             "all-reduce share is the part of step time spent in the gradient all-reduce, which includes "
             "waiting there for the slowest rank. Val PSNR is rank 0's, on the same val images for all runs.", "",
             "| scene | processes | threads each | seconds | steps | rays/s | samples/s | all-reduce share | val PSNR (dB) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in cases:
        for r in c["marks"]:
            lines.append(f"| {c['scene']} | {c['processes']} | {c['threads_per_process']} | {r['seconds']:.0f} | "
                         f"{r['steps']} | {r['rays_per_second']} | {r['samples_per_second']} | "
                         f"{100 * r['allreduce_share']:.1f}% | {r.get('val_psnr', float('nan')):.2f} |")
    lines += ["", "Gradient all-reduce alone (every rank waiting, median of 5): "
              + ", ".join(f"{c['scene']} {c['processes']} process(es) {c['allreduce_ms']} ms" for c in cases
                          if c["processes"] > 1), ""]
    lines += ["Time to a val PSNR (first mark reaching it; training seconds):", ""]
    for c in cases:
        target = targets[c["scene"]]
        reached = time_to(c["marks"], target)
        lines.append(f"- {c['scene']}, {c['processes']} process(es): {target:.1f} dB "
                     + (f"by {reached:.0f} s" if reached is not None else "not reached"))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", nargs="+", default=["demo", "lego"])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--marks", type=float, nargs="+", help="seconds of training (default: per scene)")
    parser.add_argument("--downscale", type=float)
    parser.add_argument("--eval-images", type=int, default=4)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (one GPU per process)")
    parser.add_argument("--threads-per-process", type=int,
                        help="torch threads of each process (default: the cores divided among the processes)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--note", default="", help="what else ran on the machine (written into the table)")
    parser.add_argument("--out", default="docs/bench_distributed.json")
    # worker mode (started by torchrun)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scene", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from neuralfields.config import load_preset

    cases = []
    for scene in args.scenes:
        path = load_preset(scene).data.path
        if path and not Path(path).is_dir():
            print(f"{scene}: skipped, dataset not found at {path} (set NEURALFIELDS_DATA)")
            continue
        marks = args.marks or SCENES.get(scene, {"marks": [30, 60]})["marks"]
        for procs in args.procs:
            print(f"{scene}: {procs} process(es), marks {marks} s", flush=True)
            cases.append(run_case(scene, procs, marks, args))
    # The 1-process run's final PSNR, minus a little: how soon does each run get there?
    targets = {}
    for c in cases:
        if c["processes"] == min(args.procs):
            targets[c["scene"]] = round(c["marks"][-1]["val_psnr"] - 0.5, 1)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    report = {"benchmark": "distributed", "machine": machine, "note": args.note, "targets": targets, "cases": cases}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    note = f"Measured on {machine}, device {args.device}. {args.note}".strip()
    out.with_suffix(".md").write_text(markdown(cases, targets, note))
    print(f"written {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
