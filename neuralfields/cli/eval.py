"""``neuralfields eval``: render a split of a trained run and write PSNR/SSIM to JSON."""

from __future__ import annotations

import argparse
import copy
import dataclasses

from ..bake import fast_model
from ..data import describe_split, held_out_split, load_data
from ..errors import NeuralFieldsError
from ..pose_alignment import PoseAlignmentConfig
from ..scene_model import load_model
from ..splats.model import load_splats
from ..scoring import score_model
from ..run.folder import write_json_atomic
from .common import add_device_argument, device_from, positive_int, require_run, run_dir


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run on a split (PSNR/SSIM JSON + renders)")
    p.add_argument("run", type=run_dir, help="run folder")
    p.add_argument("--split", choices=["train", "val", "test", "all"],
                   help="split to evaluate (default val; with --data, the folder's only split, test among several, "
                        "or all images of a layout without splits); all: every image of the folder")
    p.add_argument("--data", help="evaluate on another dataset folder in the same world frame (e.g. your own "
                                  "held-out photos: any layout, a test split or a transforms.json alone) instead of "
                                  "the run's own data")
    p.add_argument("--max-images", type=positive_int, help="evaluate only the first N images")
    p.add_argument("--baked", action="store_true",
                   help="score the run's bake (made on first use) instead of the live field")
    p.add_argument("--splats", action="store_true",
                   help="score the run's Gaussian splats (distill RUN --student gaussians) with the splat rasteriser")
    defaults = PoseAlignmentConfig()
    p.add_argument("--align-poses", action="store_true",
                   help="NeRF-W's protocol with the pose: fit each view's pose (and appearance code, runs with "
                        "codes) to the frozen field on the left half of its image, score PSNR/SSIM on the right "
                        "half only; metrics.json also gives each view's right-half PSNR from its given pose")
    p.add_argument("--align-steps", type=positive_int,
                   help=f"Adam steps per view for --align-poses (default {defaults.steps})")
    p.add_argument("--align-rays", type=positive_int,
                   help=f"random left-half pixels per step for --align-poses (default {defaults.rays})")
    p.add_argument("--no-progress", action="store_true")
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    require_run(args.run)
    if args.baked and args.splats:
        raise NeuralFieldsError("--baked and --splats: choose one renderer")
    align = alignment_from(args)
    if args.splats:
        model, state = load_splats(args.run, device=device_from(args))
    else:
        model, state = load_model(args.run, device=device_from(args))
    refined = not args.splats and model.camera_corrections is not None  # the live model's; a bake keeps its poses
    if args.baked:
        model, how = fast_model(model, state, args.run, progress=not args.no_progress)
    data = model.cfg.data
    if args.data:
        data = copy.deepcopy(data)
        data.path, data.format = str(args.data), "auto"
    split = args.split or (held_out_split(data.path, data.format) if args.data else "val")
    scene = load_data(data, split)  # a split the dataset lacks is a one-line error naming it
    poses = "as given (held-out views are not refined)" if refined else "as given"
    if refined and split == "train" and not args.data and len(scene) == len(model.info.cameras):
        scene, poses = dataclasses.replace(scene, cameras=model.info.cameras), "refined in training"
    indices = list(range(len(scene)))[: args.max_images] if args.max_images else None
    if align is not None:
        start, poses = poses, "aligned on the left half, scored on the right half"
        n = len(indices) if indices is not None else len(scene)
        codes = " and appearance code" if model.appearance is not None else ""
        print(f"aligning poses: {n} view{'s' if n != 1 else ''}, each {align.steps} Adam steps of {align.rays} rays "
              f"fitting its pose{codes} on the left half; PSNR/SSIM of the right halves")
    name = split if not args.data else f"{split}-{scene.root.name if scene.root else 'data'}"
    name = f"{name}-aligned" if align is not None else name  # beside the default eval's outputs, not over them
    out_dir = args.run / "eval" / (f"splats-{name}" if args.splats else name)
    result = score_model(model, scene, indices, out_dir, progress=not args.no_progress,
                         appearance_protocol=not args.splats and model.appearance is not None, align=align)
    renderer = "splats" if args.splats else "baked" if args.baked else "live"
    scored = describe_split(scene, data.val_every, args.max_images)
    result.update(split=split, scored=scored, poses=poses, step=state["step"], run=str(args.run), data=str(data.path or "demo"), renderer=renderer)
    if align is not None:
        result.update(alignment=align.as_dict(), aligned_from=start)
    write_json_atomic(out_dir / "metrics.json", result)
    label = " (right halves, poses aligned on the left)" if align is not None else " (splats)" if args.splats else ""
    print(f"{split}{label}: PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f} "
          f"over {scored} (step {state['step']}); written to {out_dir}/metrics.json")
    if align is not None:
        print(f"right image halves: PSNR {result['psnr_given_pose']:.2f} dB from the given poses, "
              f"{result['psnr']:.2f} dB aligned (mean correction {result['rotation_deg']:.2f} degrees, "
              f"{result['translation']:.4f} scene units)")
    elif "psnr_right_fitted" in result:
        print(f"appearance codes (right image halves): mean code {result['psnr_right_mean']:.2f} dB, "
              f"code fitted on the left half {result['psnr_right_fitted']:.2f} dB")
    return 0


def alignment_from(args: argparse.Namespace) -> PoseAlignmentConfig | None:
    """The pose alignment ``--align-poses`` asks for (None without it)."""
    if not args.align_poses:
        for flag, value in (("--align-steps", args.align_steps), ("--align-rays", args.align_rays)):
            if value is not None:
                raise NeuralFieldsError(f"{flag} sets up --align-poses; add --align-poses or drop {flag}")
        return None
    if args.splats:
        raise NeuralFieldsError("--align-poses fits poses through the field's renderer; it cannot score --splats")
    cfg = PoseAlignmentConfig()
    return dataclasses.replace(cfg, steps=args.align_steps or cfg.steps, rays=args.align_rays or cfg.rays)
