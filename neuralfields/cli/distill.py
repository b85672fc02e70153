"""``neuralfields distill``: convert a trained run into another field (Progressive Volume Distillation)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from ..config import RunConfig, apply_overrides, from_dict, load_run_config
from ..distill import (DistillConfig, apply_distill_overrides, check_student, distill_trainer, load_teacher,
                       load_val_scene, student_config)
from ..errors import NeuralFieldsError
from ..fields import FIELDS
from ..registry import Registry
from .common import add_device_argument, device_from, positive_float, positive_int, require_run, run_dir

# Students that are not fields: name -> run(args) (fields are students by their own names).
STUDENTS: Registry = Registry("student")


def register(sub) -> None:
    p = sub.add_parser("distill", help="convert a trained run into another field (PVD distillation)",
                       description="Distil a trained run (the teacher) into another field (the student): the student "
                                   "learns the teacher's features, densities, colours and renders on fresh views "
                                   "around the scene, and is written as a normal run folder (see docs/distill.md).")
    p.add_argument("teacher", type=run_dir, help="run folder of the trained teacher")
    p.add_argument("--student", required=True,
                   help="field to distil into (ngp, nerf, siren, cam, triplane, ...), or gaussians (3D Gaussian "
                        "splats, written to TEACHER/splats/ unless --output; see docs/splats.md)")
    p.add_argument("--steps", type=positive_int, help="distillation steps (default: the teacher's training steps)")
    p.add_argument("--active-learning", action="store_true",
                   help="PVD-AL: revisit hard poses, replay hard rays, focus per-sample losses on visible samples")
    p.add_argument("--output", help="student run folder (default runs/<scene>-<teacher>-to-<student>)")
    p.add_argument("--resume", action="store_true", help="continue the distillation in --output")
    p.add_argument("--time-budget", type=positive_float, help="stop after this many seconds of distillation")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a student config value (field.options.hidden=64, train.lr=1e-3) or a "
                        "distillation setting (distill.feature_steps=100, distill.render_stage.density=0.01; "
                        "gaussians: splats.resolution=100, splats.densify.max_gaussians=100000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_argument(p)
    p.set_defaults(handler=run)


def resumed_configs(out: Path, student: str) -> tuple[RunConfig, DistillConfig]:
    """The student config and distillation settings of the run being resumed.

    Stage boundaries are pinned to the ones the run started with, so a larger ``--steps`` extends
    the last stage instead of moving the run back to an earlier one.
    """
    cfg = load_run_config(out)
    cfg.output = str(out)  # the folder being resumed, wherever it was first written (it may have moved)
    if cfg.field.name != student:
        raise NeuralFieldsError(f"{out}: this run distils into '{cfg.field.name}', not '{student}'")
    path = out / "distill.json"
    try:
        info = json.loads(path.read_text())
        dcfg = from_dict(DistillConfig, info["settings"], str(path))
        starts = info["stage_starts"]
        dcfg.feature_steps = int(starts["density+colour"])
        dcfg.field_steps = int(starts["pixels"]) - dcfg.feature_steps
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NeuralFieldsError(f"{path}: cannot read the distillation settings to resume ({type(exc).__name__}: {exc})") from None
    return cfg, dcfg


def run(args: argparse.Namespace) -> int:
    if args.student not in FIELDS and args.student not in STUDENTS:
        raise NeuralFieldsError(f"--student: unknown student '{args.student}'; available: "
                                f"{', '.join(sorted(FIELDS))}, {', '.join(STUDENTS)}")
    if args.student in STUDENTS:
        return STUDENTS[args.student](args)
    require_run(args.teacher)
    device = device_from(args)
    teacher, state, checkpoint = load_teacher(args.teacher, device)
    if args.resume and not args.output:
        raise NeuralFieldsError("--resume needs --output RUN_FOLDER (the distillation to continue)")
    if args.resume and (Path(args.output) / "config.json").exists():
        cfg, dcfg = resumed_configs(Path(args.output), args.student)
        if args.steps:
            cfg.train.steps = args.steps
    else:
        cfg, dcfg = student_config(teacher.cfg, args.student, args.steps, args.output), DistillConfig()
    if args.time_budget:
        cfg.train.time_budget = args.time_budget
    dcfg.active.enabled = dcfg.active.enabled or bool(args.active_learning)
    apply_overrides(cfg, [s for s in args.set if not s.startswith("distill.")])
    apply_distill_overrides(dcfg, [s for s in args.set if s.startswith("distill.")]).validate()
    check_student(cfg, teacher.info)
    out = cfg.run_dir()
    if not args.resume and (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()):
        raise NeuralFieldsError(f"{out}: run folder already has checkpoints; pass --resume to continue it "
                                "or --output for a new run")
    if Path(out).resolve() == Path(args.teacher).resolve():
        raise NeuralFieldsError(f"{out}: the student cannot be written into the teacher's run folder")
    val = load_val_scene(cfg)
    print(f"teacher: {args.teacher} ({teacher.cfg.field.name}, step {state.get('step')}, {checkpoint.name}); "
          f"student: {cfg.field.name}; run folder: {out}")
    loop = distill_trainer(cfg, teacher, dcfg, val, out, resume=args.resume, progress=not args.no_progress,
                           teacher_dir=args.teacher, device=device)
    distill = loop.parts["distill"].state
    s2, s3 = distill.objective.schedule.boundaries()
    print(f"student parameters: {loop.num_parameters:,}; stages: features 0-{s2}, "
          f"density+colour {s2}-{s3}, pixels {s3}-{cfg.train.steps}; inherited: grid ({distill.grid_transfer})"
          + (f", {', '.join(distill.inherited)}" if distill.inherited else "")
          + ("; active learning on" if dcfg.active.enabled else ""))
    summary = loop.fit()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}))
    print(f"results: {out}/ (config.json, distill.json, metrics.jsonl, summary.json, checkpoints/); "
          f"evaluate with: neuralfields eval {out}")
    return 0


@STUDENTS.register("gaussians")
def run_gaussians(args: argparse.Namespace) -> int:
    """``distill RUN --student gaussians``: 3D Gaussian splats of the teacher (neuralfields.distill.gaussians)."""
    from ..distill.gaussians import SplatDistillConfig, load_photos, splat_distill_trainer, splat_student_config

    require_run(args.teacher)
    if args.active_learning:
        raise NeuralFieldsError("--active-learning: not available for --student gaussians")
    bad = [s for s in args.set if s.startswith("distill.")]
    if bad:
        raise NeuralFieldsError(f"--set {bad[0]}: gaussians take splats.KEY=VALUE settings (see docs/splats.md)")
    out = Path(args.output) if args.output else args.teacher / "splats"
    if Path(out).resolve() == Path(args.teacher).resolve():
        raise NeuralFieldsError(f"{out}: the splats cannot be written into the teacher's run folder itself")
    device = device_from(args)
    teacher, state, checkpoint = load_teacher(args.teacher, device)
    resuming = args.resume and (out / "config.json").exists()
    if args.resume and not resuming:
        raise NeuralFieldsError(f"{out}: no splat distillation to resume here")
    if resuming:
        cfg = load_run_config(out)
        if cfg.field.name != "gaussians":
            raise NeuralFieldsError(f"{out}: this run distils into '{cfg.field.name}', not 'gaussians'")
        scfg = from_dict(SplatDistillConfig, cfg.field.options, f"{out / 'config.json'}: field.options")
        cfg.train.steps = args.steps or cfg.train.steps
    else:
        scfg = SplatDistillConfig()
        cfg = splat_student_config(teacher.cfg, scfg, args.steps, str(out))
    if args.time_budget:
        cfg.train.time_budget = args.time_budget
    splat_sets = [s[len("splats."):] for s in args.set if s.startswith("splats.")]
    for item in splat_sets:
        try:
            apply_overrides(scfg, [item])
        except NeuralFieldsError:
            raise NeuralFieldsError(f"--set splats.{item}: unknown splat setting (see docs/splats.md)") from None
    apply_overrides(cfg, [s for s in args.set if not s.startswith("splats.")])
    cfg.field.options = dataclasses.asdict(scfg.validate())
    if not resuming and (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()):
        raise NeuralFieldsError(f"{out}: run folder already has checkpoints; pass --resume to continue it "
                                "or --output for a new run")
    val = load_val_scene(cfg)
    photos = load_photos(cfg, print) if scfg.photo_fraction > 0 else None
    print(f"teacher: {args.teacher} ({teacher.cfg.field.name}, step {state.get('step')}, {checkpoint.name}); "
          f"student: gaussians; run folder: {out}")
    loop = splat_distill_trainer(cfg, teacher, scfg, val, out, resume=resuming, progress=not args.no_progress,
                                 teacher_dir=args.teacher, device=device, photos=photos)
    origin = "resumed" if resuming else "from the teacher's point cloud"
    print(f"Gaussians: {len(loop.model.scene):,} ({origin}); {cfg.train.steps} steps at {scfg.resolution} px")
    summary = loop.fit()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}))
    print(f"results: {out}/; export with: neuralfields export splats {args.teacher} --out scene.ply; "
          f"evaluate with: neuralfields eval {args.teacher} --splats")
    return 0
