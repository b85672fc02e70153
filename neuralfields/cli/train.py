"""``neuralfields train``: train a field on a scene into a run folder.

On several devices the same command runs once per rank under torchrun (``torchrun
--nproc-per-node N -m neuralfields train ...``, or ``--devices N``, which starts exactly that on
this machine); see docs/distributed.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from .. import distributed
from ..config import RunConfig, apply_overrides, load_preset, load_run_config
from ..data import SplitNotFound, load_data
from ..errors import NeuralFieldsError
from ..fields import FIELDS
from ..run.checkpoints import list_checkpoints
from ..train import auto
from ..train.scene import scene_trainer
from .common import add_device_argument, command_line, device_from, positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser("train", help="train a field on a folder of posed images (default: the built-in demo scene)",
                       description="Train a field. With no arguments, generates the built-in demo scene and trains on it.")
    p.add_argument("--scene", help="scene preset from scenes/ (demo, lego, fox, ...) or a .toml file")
    p.add_argument("--data", help="dataset folder (NeRF-synthetic/D-NeRF, instant-ngp or nerfstudio transforms.json, "
                                  "COLMAP sparse/0, LLFF poses_bounds.npy)")
    p.add_argument("--field", help="field to train (see 'neuralfields fields')")
    p.add_argument("--steps", type=positive_int, help="total training steps")
    p.add_argument("--downscale", type=positive_float, help="resize images by 1/N on load")
    p.add_argument("--background", choices=["white", "black", "random"], help="background for RGBA images")
    p.add_argument("--output", help="run folder (default runs/<scene>-<field>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    p.add_argument("--time-budget", type=positive_float, help="stop after this many seconds of training")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set train.lr=0.005 --set field.options.n_levels=8")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_argument(p)
    p.add_argument("--devices", type=positive_int, default=1, metavar="N",
                   help="data-parallel training on N processes of this machine (one per GPU, or CPU processes): "
                        "launches torchrun; for several machines run torchrun yourself (docs/distributed.md)")
    p.set_defaults(handler=run, parser=p)


def resolve_config(args: argparse.Namespace, folder_preset: str | None = None) -> tuple[RunConfig, bool]:
    """The run config from preset, run folder (on resume) and flags; also whether to resume.

    ``folder_preset``: the preset whose field, render and train settings a bare ``--data`` folder
    starts from (dynamic folders use ``dnerf``); None keeps the config defaults.
    """
    output = Path(args.output) if args.output else None
    resume = bool(args.resume)
    if resume and output is not None and (output / "config.json").exists():
        cfg = load_run_config(output)
    elif resume and output is None:
        raise NeuralFieldsError("--resume needs --output RUN_FOLDER (the run to continue)")
    elif args.scene:
        cfg = load_preset(args.scene)
    elif args.data:
        cfg = load_preset(folder_preset) if folder_preset else RunConfig()
        cfg.scene = Path(args.data).resolve().name
        cfg.data.downscale = RunConfig().data.downscale  # the preset's size is for its own scene
    else:
        cfg = load_preset("demo")
    if args.data:
        cfg.data.path = str(args.data)
    if args.field and args.field != cfg.field.name:
        cfg.field.name, cfg.field.options = args.field, {}
    if args.steps:
        cfg.train.steps = args.steps
    if args.downscale:
        cfg.data.downscale = args.downscale
    if args.background:
        cfg.data.background = args.background
    if args.time_budget:
        cfg.train.time_budget = args.time_budget
    if output is not None:
        cfg.output = str(output)
    apply_overrides(cfg, args.set)
    return cfg, resume


def run(args: argparse.Namespace) -> int:
    if args.devices > 1 and not distributed.launched():
        return launch(args)
    if not distributed.launched():
        return train(args)
    try:
        return train(args)
    except (NeuralFieldsError, KeyboardInterrupt) as exc:
        if distributed.launch_rank() == 0:
            raise
        # Input errors hit every rank alike, a lost peer is rank 0's to report: rank 0 speaks once.
        if isinstance(exc, NeuralFieldsError) and not isinstance(exc, distributed.RankStopped):
            distributed.record_failure(str(exc))
        raise SystemExit(130 if isinstance(exc, KeyboardInterrupt) else 2) from None
    except Exception as exc:
        distributed.record_failure(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
        raise


def launch(args: argparse.Namespace) -> int:
    """``--devices N``: start this command as N torchrun processes on this machine and wait.

    A rank that fails is reported by rank 0 in one line (it notices the lost peer, or torchrun
    ends it); should rank 0 itself be gone, this process says so and where the last checkpoint is.
    """
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # torchrun's own notes and failure logs: rank 0 (or, failing that, this process) says it in one line.
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)
    argv = command_line(args.parser, args, drop=("devices",))
    launch_args = torchrun.parse_args(["--standalone", f"--nproc-per-node={args.devices}",
                                       "--module", "neuralfields", "train", *argv])
    try:
        torchrun.run(launch_args)
    except SignalException:  # Ctrl-C: the ranks got it too, and rank 0 said where it stopped
        return 130
    except ChildFailedError as exc:
        failure = exc.failures.get(0)
        if failure is None or failure.exitcode in (2, 130):
            return 2 if failure is None else failure.exitcode  # rank 0 has said what happened
        why = failure.signal_name() if failure.exitcode < 0 else f"exit code {failure.exitcode}"
        found = list_checkpoints(resolve_config(args)[0].run_dir())
        raise NeuralFieldsError(f"rank 0 stopped ({why}); last checkpoint: {found[-1] if found else 'none'}") from None
    return 0


def load_splits(cfg: RunConfig):
    """The train split and the val split (None, with a note, when the dataset has none)."""
    with distributed.main_first():  # rank 0 may render the demo scene that the other ranks read
        train_scene = load_data(cfg.data, "train")
        try:
            val_scene = load_data(cfg.data, "val")
        except SplitNotFound as exc:
            print(f"note: {exc}; training without validation")
            val_scene = None
    return train_scene, val_scene


def train(args: argparse.Namespace) -> int:
    """Train as ``args`` say (one process, or one rank of a torchrun group)."""
    cfg, resume = resolve_config(args)
    device = device_from(args)
    train_scene, val_scene = load_splits(cfg)
    if train_scene.is_dynamic and not FIELDS[cfg.field.name].cls.time_dependent and (args.field or args.scene or resume):
        raise NeuralFieldsError(f"{cfg.data.path}: frames carry 'time' but field '{cfg.field.name}' is static; "
                                "use a dynamic field (--field deform or kplanes, or --scene dnerf)")
    if args.data and not (args.scene or resume):
        # A bare folder: settings from the data itself (preset, image size, appearance codes).
        choices = auto.choose(train_scene, args.downscale is not None, cfg.data.downscale,
                              auto.free_device_memory(device))
        if choices.preset or choices.downscale:
            cfg, resume = resolve_config(args, folder_preset=choices.preset)
            if choices.downscale:
                cfg.data.downscale = choices.downscale
            train_scene, val_scene = load_splits(cfg)
        note = auto.apply_appearance(cfg, train_scene, args.set)
        notes = [*choices.notes, *([note] if note else []), auto.describe(cfg, train_scene)]
        print("chosen from the data: " + "; ".join(notes))
    run_dir = cfg.run_dir()
    if not resume and (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
        raise NeuralFieldsError(f"{run_dir}: run folder already has checkpoints; pass --resume to continue it "
                                "or --output for a new run")
    where = cfg.data.path or "built-in demo scene"
    n_val = 0 if val_scene is None else len(val_scene)
    print(f"scene: {where} ({len(train_scene)} train / {n_val} val images, "
          f"{train_scene.width}x{train_scene.height}); field: {cfg.field.name}; run folder: {run_dir}")
    loop = scene_trainer(cfg, train_scene, val_scene, run_dir, resume=resume, progress=not args.no_progress,
                         device=device)
    print(f"field parameters: {loop.num_parameters:,}")
    summary = loop.fit()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}))
    print(f"results: {run_dir}/ (config.json, metrics.jsonl, summary.json, checkpoints/); "
          f"evaluate with: neuralfields eval {run_dir}")
    return 0
