#!/usr/bin/env python
"""Benchmark: distillation (PVD, PVD-AL) against training from scratch, on lego, on the CPU.

1. Teacher: a hash grid trained with the ``lego`` preset (``--teacher-minutes`` of training, or
   ``--teacher-steps``), written as a run folder under ``--workdir`` and reused when it is
   already there; or any trained run given with ``--teacher``.
2. For every student (``--students``, default nerf siren cam triplane, CPU-sized options as in
   the demo presets): (a) distillation from the teacher, (b) training from scratch on the images,
   (c) distillation with active learning (unless ``--no-active``), each for the same wall-time
   budget (``--minutes``) with the same field options, learning rate and samples per batch.
   Val PSNR (``--eval-images`` val views) is measured at ``--marks`` points of *training* time
   (evaluation pauses the clock; the teacher's share of each distillation step counts).
3. Reported per student: the time distillation needs to reach the from-scratch run's final PSNR
   (linear interpolation between marks) and the speed-up ``scratch time / that time`` (PVD
   reports 10-20x for hash grid -> NeRF MLP, on a GPU with much longer budgets), and the PSNR
   gap at equal time (distilled minus scratch at the last mark). Speed-ups exclude the teacher's
   training time, as the papers do; the JSON also gives it, to judge when distillation pays.

Step budgets: the learning-rate schedule (and distillation's stage lengths) need a step count.
By default each run times its first ``--calibration-steps`` steps and sets its budget to what fits
in ``--minutes``; ``--steps N`` fixes it instead. Results go to ``--json`` and ``--markdown``.

Full runs take hours on a 2-core CPU; run them on an otherwise idle machine (timings from a
shared machine are inflated and noisy). A smoke test with tiny budgets:

    python scripts/bench_distill.py --downscale 8 --teacher-minutes 0.3 --minutes 0.2 --marks 2 \\
        --eval-images 1 --students triplane nerf --workdir /tmp/bd --json /tmp/bd.json --markdown /tmp/bd.md
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralfields.config import RunConfig, load_preset  # noqa: E402
from neuralfields.data import load_data  # noqa: E402
from neuralfields.distill import DistillConfig, distill_trainer, load_teacher, set_steps, student_config  # noqa: E402
from neuralfields.run.checkpoints import list_checkpoints  # noqa: E402
from neuralfields.scoring import score_model
from neuralfields.train.scene import scene_trainer  # noqa: E402

# CPU-sized students (the scenes/demo-*.toml presets and scripts/bench_fields.py use the same):
# label -> (field, options, Adam rate, samples per batch).
NERF = {"hidden": 128, "layers": 4, "skips": [2], "color_hidden": 64}
STUDENTS = {
    "nerf": ("nerf", NERF, 5e-4, 16384),
    "siren": ("siren", {"hidden": 128, "layers": 4, "color_hidden": 64, "backbone_options": {"first_omega": 10.0}},
              1e-4, 16384),
    "cam": ("cam", {"base": "nerf", "base_options": NERF}, 5e-4, 16384),
    "triplane": ("triplane", {}, 1e-2, 32768),
}
PAPER_SPEEDUP = "10-20x (PVD, hash grid -> NeRF MLP, GPU)"


def mark_times(minutes: float, n: int) -> list[float]:
    """``n`` evaluation times in seconds, geometric from 5% of the budget to all of it."""
    total = minutes * 60.0
    if n <= 1:
        return [total]
    return [float(t) for t in np.geomspace(0.05 * total, total, n)]


def run_curve(trainer, val, subset: list[int], marks: list[float], steps: int | None, calibration: int,
              label: str) -> dict:
    """Step ``trainer`` until the last mark; val PSNR at each mark of training time.

    Without ``steps`` the step budget (which paces the lr schedule and distillation's stages) is
    sized to the time budget twice: after ``calibration`` steps, then from the step rate once 20%
    of the time has passed (the first steps, before the occupancy grid culls, are far slower).
    A run that reaches its step budget early goes on at its final settings until the last mark,
    so every run gets the same training time.
    """
    set_steps(trainer, steps or 10**9)
    budget = marks[-1]
    elapsed, rows, pending, since = 0.0, [], list(marks), None
    while pending:
        start = time.perf_counter()
        trainer.train_step()
        elapsed += time.perf_counter() - start
        if steps is None and (trainer.step == calibration or (since and elapsed >= 0.2 * budget)):
            if since is None:  # first estimate, from the calibration steps
                rate, since = trainer.step / elapsed, (trainer.step, elapsed)
            else:
                rate, since = (trainer.step - since[0]) / max(elapsed - since[1], 1e-9), ()
            set_steps(trainer, trainer.step + max(1, int((budget - elapsed) * rate)))
        while pending and elapsed >= pending[0]:
            mark = pending.pop(0)
            result = score_model(trainer.model, val, subset)
            rows.append({"seconds": round(elapsed, 1), "mark": round(mark, 1), "steps": trainer.step,
                         "val_psnr": round(result["psnr"], 3)})
            print(f"  {label:28s} {elapsed:7.1f} s  step {trainer.step:6d}  val PSNR {result['psnr']:.2f}", flush=True)
    return {"curve": rows, "steps_budget": trainer.settings.steps, "num_parameters": trainer.model.field.num_parameters}


def time_to_reach(curve: list[dict], target: float) -> float | None:
    """Training seconds at which ``curve`` first reaches ``target`` PSNR (linear between marks)."""
    prev_t, prev_p = 0.0, None
    for row in curve:
        t, p = row["seconds"], row["val_psnr"]
        if p >= target:
            if prev_p is None or p == prev_p:
                return t
            return prev_t + (t - prev_t) * (target - prev_p) / (p - prev_p)
        prev_t, prev_p = t, p
    return None


def compare(scratch: dict, distilled: dict) -> dict:
    """Speed-up to the scratch run's final PSNR and the PSNR gap at equal (final) time."""
    final = scratch["curve"][-1]
    reach = time_to_reach(distilled["curve"], final["val_psnr"])
    return {"scratch_final_psnr": final["val_psnr"], "scratch_seconds": final["seconds"],
            "distill_final_psnr": distilled["curve"][-1]["val_psnr"],
            "psnr_gap_at_equal_time": round(distilled["curve"][-1]["val_psnr"] - final["val_psnr"], 3),
            "seconds_to_scratch_psnr": None if reach is None else round(reach, 1),
            "speedup": None if not reach else round(final["seconds"] / reach, 2)}


def get_teacher(args, preset: RunConfig) -> tuple[Path, dict]:
    """The teacher run folder (trained here unless given or already present) and its facts."""
    if args.teacher:
        return Path(args.teacher), {"trained_here": False}
    run_dir = Path(args.workdir) / "teacher"
    if list_checkpoints(run_dir):
        print(f"reusing teacher {run_dir}")
        summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
        return run_dir, {"trained_here": False, "train_seconds": summary.get("train_seconds")}
    cfg = copy.deepcopy(preset)
    cfg.output = str(run_dir)
    cfg.train.eval_every = 0
    cfg.train.checkpoint_every = 0
    if args.teacher_steps:
        cfg.train.steps = args.teacher_steps
    if args.teacher_minutes:
        cfg.train.time_budget = args.teacher_minutes * 60
    print(f"training the teacher ({cfg.field.name}) into {run_dir}", flush=True)
    trainer = scene_trainer(cfg, load_data(cfg.data, "train"), load_data(cfg.data, "val"), run_dir, progress=False)
    summary = trainer.fit()
    return run_dir, {"trained_here": True, "train_seconds": round(summary["train_seconds"], 1)}


def student_run_config(teacher_cfg: RunConfig, label: str) -> RunConfig:
    field, options, lr, samples = STUDENTS[label]
    cfg = student_config(teacher_cfg, field)
    cfg.field.options = copy.deepcopy(options)
    cfg.train.lr, cfg.train.target_samples = lr, samples
    cfg.train.eval_every = cfg.train.checkpoint_every = 0
    return cfg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", default="lego", help="scene preset of the teacher (and the data)")
    parser.add_argument("--data", help="dataset folder (default: the preset's)")
    parser.add_argument("--downscale", type=float, default=4)
    parser.add_argument("--teacher", help="trained teacher run folder (default: train one)")
    parser.add_argument("--teacher-minutes", type=float, default=10.0, help="teacher training time")
    parser.add_argument("--teacher-steps", type=int, help="teacher step budget (default: the preset's)")
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per student run")
    parser.add_argument("--marks", type=int, default=8, help="evaluations per run (geometric in time)")
    parser.add_argument("--steps", type=int, help="fixed step budget per run (default: calibrated to --minutes)")
    parser.add_argument("--calibration-steps", type=int, default=20)
    parser.add_argument("--eval-images", type=int, default=10, help="val images at each mark")
    parser.add_argument("--eval-downscale", type=float, default=2.0,
                        help="evaluate on val images this many times smaller than training (an MLP student's "
                             "first marks, before its grid has culled empty space, cost seconds per image)")
    parser.add_argument("--no-active", action="store_true", help="skip the active-learning runs")
    parser.add_argument("--workdir", default="runs/bench_distill", help="where the teacher run is written")
    parser.add_argument("--json", default="docs/bench_distill.json")
    parser.add_argument("--markdown", default="docs/bench_distill.md")
    args = parser.parse_args()

    preset = load_preset(args.scene)
    if args.data:
        preset.data.path = args.data
    preset.data.downscale = args.downscale
    if not args.teacher and not Path(preset.data.path).is_dir():
        print(f"skipped: dataset not found at {preset.data.path} (set NEURALFIELDS_DATA or --data)")
        return 0
    teacher_dir, teacher_facts = get_teacher(args, preset)
    teacher, state, _ = load_teacher(teacher_dir)
    val = load_data(dataclasses.replace(teacher.cfg.data, downscale=teacher.cfg.data.downscale * args.eval_downscale),
                    "val")
    train = load_data(teacher.cfg.data, "train")
    subset = sorted({int(round(k)) for k in np.linspace(0, len(val) - 1, min(args.eval_images, len(val)))})
    teacher_eval = score_model(teacher, val, subset)
    print(f"teacher {teacher.cfg.field.name}: step {state['step']}, val PSNR {teacher_eval['psnr']:.2f} "
          f"on {len(subset)} views; {train.width}x{train.height}, {torch.get_num_threads()} threads", flush=True)
    marks = mark_times(args.minutes, args.marks)
    results = []
    for label in args.students:
        row = {"student": label, "field": STUDENTS[label][0], "options": STUDENTS[label][1], "lr": STUDENTS[label][2]}
        cfg = student_run_config(teacher.cfg, label)
        scratch = scene_trainer(copy.deepcopy(cfg), train, val, run_dir=None, progress=False)
        row["scratch"] = run_curve(scratch, val, subset, marks, args.steps, args.calibration_steps, f"{label} scratch")
        variants = [("distill", False)] + ([] if args.no_active else [("distill_al", True)])
        for key, active in variants:
            dcfg = DistillConfig()
            dcfg.active.enabled = active
            trainer = distill_trainer(copy.deepcopy(cfg), teacher, dcfg, val, run_dir=None, progress=False)
            row[key] = run_curve(trainer, val, subset, marks, args.steps, args.calibration_steps,
                                 f"{label} distill{' + AL' if active else ''}")
            row[key]["vs_scratch"] = compare(row["scratch"], row[key])
        results.append(row)

    report = {
        "benchmark": "distill", "scene": args.scene, "downscale": args.downscale,
        "resolution": [train.width, train.height], "teacher": {
            "run": str(teacher_dir), "field": teacher.cfg.field.name, "options": teacher.cfg.field.options,
            "steps": state["step"], "val_psnr": round(teacher_eval["psnr"], 3), **teacher_facts},
        "minutes_per_run": args.minutes, "eval_images": len(subset), "eval_resolution": [val.width, val.height], "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "paper_speedup": PAPER_SPEEDUP, "students": results,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    Path(args.markdown).write_text(markdown(report))
    print(f"written {args.json} and {args.markdown}")
    return 0


def _fmt(value, unit: str = "", digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not reached"
    return f"{value:.{digits}f}{unit}"


def markdown(report: dict) -> str:
    t = report["teacher"]
    lines = [
        "# Distillation versus training from scratch",
        "",
        "Written by `scripts/bench_distill.py` (see its docstring and docs/distill.md). Scene "
        f"`{report['scene']}` at {report['resolution'][0]}x{report['resolution'][1]}, CPU "
        f"({report['threads']} threads, {report['machine']}, torch {report['torch']}). Each student run has "
        f"{report['minutes_per_run']:g} min of training time; val PSNR on {report['eval_images']} val views "
        f"at {report['eval_resolution'][0]}x{report['eval_resolution'][1]}.",
        "",
        f"Teacher: `{t['field']}` ({t['steps']} steps"
        + (f", {t['train_seconds']:.0f} s of training" if t.get("train_seconds") else "")
        + f"), val PSNR {t['val_psnr']:.2f} dB. Speed-ups exclude the teacher's training, as in the papers "
        f"(paper: {report['paper_speedup']}).",
        "",
        "| student | params | from scratch: final PSNR | distilled: PSNR at equal time | gap | time to scratch PSNR | speed-up "
        "| + active learning: PSNR | gap | speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["students"]:
        d = row["distill"]["vs_scratch"]
        al = row.get("distill_al", {}).get("vs_scratch")
        lines.append(
            f"| {row['student']} | {row['scratch']['num_parameters']:,} | {d['scratch_final_psnr']:.2f} dB "
            f"({d['scratch_seconds']:.0f} s) | {d['distill_final_psnr']:.2f} dB | {d['psnr_gap_at_equal_time']:+.2f} dB "
            f"| {_fmt(d['seconds_to_scratch_psnr'], ' s', 0)} | {_fmt(d['speedup'], 'x')} | "
            + (f"{al['distill_final_psnr']:.2f} dB | {al['psnr_gap_at_equal_time']:+.2f} dB | {_fmt(al['speedup'], 'x')} |"
               if al else "- | - | - |"))
    lines += ["", "Val PSNR (dB) against training time:", ""]
    for row in report["students"]:
        runs = [("scratch", row["scratch"]), ("distilled", row["distill"])]
        if "distill_al" in row:
            runs.append(("distilled + AL", row["distill_al"]))
        header = " | ".join(f"{r['mark']:.0f} s" for r in row["scratch"]["curve"])
        lines += [f"**{row['student']}**", "", f"| run | {header} |",
                  "| --- |" + " --- |" * len(row["scratch"]["curve"])]
        for name, run in runs:
            cells = " | ".join(f"{r['val_psnr']:.2f}" for r in run["curve"])
            lines.append(f"| {name} | {cells} |")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
