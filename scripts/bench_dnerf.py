"""Benchmark dynamic fields on the 8 D-NeRF scenes under a fixed CPU time budget per scene.

    python scripts/bench_dnerf.py                          # all 8 scenes, 120 s each, preset dnerf
    python scripts/bench_dnerf.py --budget 600 --field kplanes
    python scripts/bench_dnerf.py --scenes lego --budget 20 --eval-images 2   # smoke test

Each scene trains from scratch with the ``dnerf`` preset (``--set`` overrides it) until the
budget is spent: the step count is calibrated from the first steps so the learning-rate
schedule completes inside the budget, and the trainer's time budget is the hard stop. Then the
val split is rendered (``--eval-images`` evenly spaced frames; all by default) and PSNR / SSIM
are averaged. Results go to a JSON file and a markdown table beside the published test-set
means (GPU methods trained for tens of minutes to hours; not comparable budgets).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralfields.config import apply_overrides, expand_data_path, load_preset  # noqa: E402
from neuralfields.data import load_data  # noqa: E402
from neuralfields.errors import NeuralFieldsError  # noqa: E402
from neuralfields.scoring import score_model, spread_indices  # noqa: E402
from neuralfields.train.scene import scene_trainer  # noqa: E402

SCENES = ["bouncingballs", "hellwarrior", "hook", "jumpingjacks", "lego", "mutant", "standup", "trex"]

# Published D-NeRF mean PSNR (8 scenes, 400x400 test split), from the papers.
PUBLISHED = [
    ("D-NeRF", 29.67, "Pumarola et al. 2021; MLP deformation + canonical NeRF, ~2 days on one GPU"),
    ("HexPlane", 31.04, "Cao & Johnson 2023; six space-time planes, ~12 min on one GPU"),
    ("K-Planes (explicit/hybrid)", 31.61, "Fridovich-Keil et al. 2023; ~1 h on one GPU"),
    ("T-NeRF + CAM", 33.78, "Lee et al. 2024; CAM time modulation of T-NeRF (32.22 without)"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default="${NEURALFIELDS_DATA}/dnerf_400",
                   help="folder holding the D-NeRF scene folders (default ../shared/data/dnerf_400)")
    p.add_argument("--scenes", nargs="+", default=SCENES, help="scene folder names (default: all 8)")
    p.add_argument("--budget", type=float, default=120.0, help="training seconds per scene (default 120)")
    p.add_argument("--preset", default="dnerf", help="scene preset supplying the config (default dnerf)")
    p.add_argument("--field", help="override the preset's field (deform, kplanes, ...)")
    p.add_argument("--downscale", type=float, help="override the preset's downscale")
    p.add_argument("--eval-images", type=int, default=10,
                   help="val frames rendered per scene, evenly spaced in time (default 10; 0: all)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, as in train")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    p.add_argument("--device", default="cpu", help="torch device to train and render on (default cpu)")
    p.add_argument("--merge", nargs="+", metavar="JSON",
                   help="no training: combine reports of scenes run separately (in parallel) into one")
    p.add_argument("--json", default=str(ROOT / "docs" / "bench_dnerf.json"), help="output JSON")
    p.add_argument("--markdown", default=str(ROOT / "docs" / "bench_dnerf.md"), help="output markdown table")
    return p.parse_args(argv)


def run_scene(path: Path, args: argparse.Namespace) -> dict:
    cfg = load_preset(args.preset)
    cfg.data.path = str(path)
    cfg.scene = path.name
    if args.field and args.field != cfg.field.name:
        cfg.field.name, cfg.field.options = args.field, {}
    if args.downscale:
        cfg.data.downscale = args.downscale
    cfg.train.eval_every = 0
    cfg.train.checkpoint_every = 0
    apply_overrides(cfg, args.set)
    train = load_data(cfg.data, "train")
    val = load_data(cfg.data, "val")
    if not train.is_dynamic:
        raise NeuralFieldsError(f"{path}: frames have no 'time'; not a D-NeRF scene")
    # No val scene in the trainer: it would evaluate again at the end of fit().
    cfg.train.steps = 10**9
    cfg.train.time_budget = args.budget  # ends training and paces the lr schedule
    trainer = scene_trainer(cfg, train, None, run_dir=None, progress=False, log=lambda _: None, device=args.device)
    trainer.fit()
    n_eval = len(val) if args.eval_images <= 0 else min(args.eval_images, len(val))
    start = time.perf_counter()
    result = score_model(trainer.model, val, spread_indices(len(val), n_eval))
    return {
        "psnr": result["psnr"], "ssim": result["ssim"], "steps": trainer.step,
        "train_seconds": round(trainer.train_seconds, 1), "eval_seconds": round(time.perf_counter() - start, 1),
        "val_images": n_eval, "resolution": f"{val.width}x{val.height}", "parameters": trainer.model.field.num_parameters,
        "field": cfg.field.name, "options": cfg.field.options, "device": str(trainer.model.device),
    }


def how_run(report: dict) -> list[str]:
    """A sentence (and a blank line) on how a merged report's processes shared the machine."""
    if report.get("parallel_runs", 1) > 1:
        return [f"The scenes ran as {report['parallel_runs']} processes at once, sharing the machine.", ""]
    if isinstance(report.get("runs"), int) and report["runs"] > 1:  # older reports list commands
        return [f"The scenes ran one at a time, in {report['runs']} processes.", ""]
    return []


def markdown(report: dict) -> str:
    rows = report["scenes"]
    lines = [
        f"# D-NeRF benchmark ({report.get('device', 'cpu')}, fixed time budget)",
        "",
        "Written by `scripts/bench_dnerf.py`; do not edit by hand. Command:",
        "",
        f"    {report['command']}",
        "",
        f"Field `{report['field']}`, {report['budget_s']:.0f} s of training per scene on {report['machine']} "
        f"({report['threads']} torch threads; 1-minute load average {report['load_average_start']:.1f} at the start, "
        f"{report['load_average_end']:.1f} at the end), val split at {report['resolution']}.",
        "",
        *how_run(report),
        "| scene | PSNR (dB) | SSIM | steps | train s | params |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['steps']} | {r['train_seconds']:.0f} | {r['parameters']:,} |")
    m = report["mean"]
    lines.append(f"| **mean** | **{m['psnr']:.2f}** | **{m['ssim']:.3f}** | | | |")
    if len(rows) < len(SCENES):
        lines += ["", f"Only {len(rows)} of the {len(SCENES)} scenes: this mean is not comparable with the 8-scene means below."]
    lines += [
        "",
        "Published 8-scene means on the D-NeRF *test* split at 400x400 (GPU, much longer training):",
        "",
        "| method | mean PSNR (dB) | notes |",
        "|---|---:|---|",
        *(f"| {name} | {psnr:.2f} | {note} |" for name, psnr, note in PUBLISHED),
        "",
        "These are not like-for-like: this table uses the val split (the test split is not in the",
        "shared data), a budget of minutes or less, and possibly reduced resolution. Timings",
        "depend on machine load.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = settings_command(sys.argv[1:] if argv is None else argv)
    if args.merge:
        return write_report(merge_reports([json.loads(Path(p).read_text()) for p in args.merge]), args)
    root = Path(expand_data_path(args.data_root))
    if not root.is_dir():
        print(f"{root}: D-NeRF data not found (set NEURALFIELDS_DATA or pass --data-root)", file=sys.stderr)
        return 2
    machine = f"{platform.machine()} {os.cpu_count()} cores"
    if args.device.startswith("cuda"):
        machine += f", {torch.cuda.get_device_name(torch.device(args.device))}"
    report: dict = {"command": command, "budget_s": args.budget, "machine": machine, "device": args.device,
                    "threads": torch.get_num_threads(), "load_average_start": os.getloadavg()[0], "started_at": time.time(), "scenes": {}}
    for name in args.scenes:
        path = root / name
        if not path.is_dir():
            print(f"{path}: scene folder not found", file=sys.stderr)
            return 2
        print(f"{name}: training for {args.budget:.0f} s ...", flush=True)
        report["scenes"][name] = row = run_scene(path, args)
        print(f"{name}: PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.3f}, {row['steps']} steps", flush=True)
    report["load_average_end"], report["ended_at"] = os.getloadavg()[0], time.time()
    return write_report(report, args)


def settings_command(argv: list[str], drop: tuple[str, ...] = ("--json", "--markdown", "--merge", "--scenes")) -> str:
    """The command line without where reports go or which scenes ran: the settings to reproduce."""
    kept, skipping = [], False
    for arg in argv:
        if arg.startswith("--"):
            skipping = arg.split("=")[0] in drop
        if not skipping:
            kept.append(arg)
    return " ".join(["python scripts/bench_dnerf.py", *kept])


def most_at_once(reports: list[dict]) -> int:
    """How many of ``reports`` ran at the same time at most (reports without times count as all)."""
    if not all("started_at" in r and "ended_at" in r for r in reports):
        return len(reports)
    return max(sum(o["started_at"] < r["ended_at"] and r["started_at"] < o["ended_at"] for o in reports) for r in reports)


def merge_reports(reports: list[dict]) -> dict:
    """One report of several runs' scenes (the first run's settings; load averages at their worst)."""
    commands = sorted({settings_command(shlex.split(r["command"])[2:]) for r in reports})
    if len(commands) > 1:
        raise SystemExit(f"--merge: the reports ran with different settings: {commands}")
    merged = dict(reports[0], command=f"{commands[0]} --scenes <one or more>, merged with --merge", scenes={})
    for r in reports:
        merged["scenes"].update(r["scenes"])
    merged["load_average_start"] = max(r["load_average_start"] for r in reports)
    merged["load_average_end"] = max(r["load_average_end"] for r in reports)
    merged["parallel_runs"] = max(most_at_once(reports), *(r.get("parallel_runs", 1) for r in reports))
    merged["runs"] = len(reports)
    return merged


def write_report(report: dict, args: argparse.Namespace) -> int:
    rows = list(report["scenes"].values())
    report["field"] = rows[0]["field"]
    report["resolution"] = rows[0]["resolution"]
    report["mean"] = {k: sum(r[k] for r in rows) / len(rows) for k in ("psnr", "ssim")}
    report["published_mean_psnr"] = {name: psnr for name, psnr, _ in PUBLISHED}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    Path(args.markdown).write_text(markdown(report))
    print(f"mean PSNR {report['mean']['psnr']:.2f} dB, SSIM {report['mean']['ssim']:.3f}; wrote {args.json} and {args.markdown}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NeuralFieldsError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
