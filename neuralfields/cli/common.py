"""Argument helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from .. import distributed
from ..device import DEVICE_CHOICES, describe_device, resolve_device
from ..errors import NeuralFieldsError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def run_dir(text: str) -> Path:
    """A run folder argument (checked when used, so the message names the problem)."""
    return Path(text)


def require_run(path: Path) -> Path:
    if not path.exists():
        raise NeuralFieldsError(f"{path}: run folder does not exist")
    if not (path / "config.json").exists():
        raise NeuralFieldsError(f"{path}: not a run folder (no config.json)")
    return path


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help=f"where the field runs: {DEVICE_CHOICES} (default auto: CUDA when present)")


def device_from(args: argparse.Namespace, quiet: bool = False) -> torch.device:
    """The ``--device`` of a command, announced on one line.

    Under torchrun the command joins the process group and each rank takes its own device
    (``cuda:LOCAL_RANK`` or the CPU, see :mod:`neuralfields.distributed`); ranks other than 0
    print nothing on stdout from then on, so the user reads one copy of the command's output.
    """
    name = getattr(args, "device", "auto")
    if not distributed.launched():
        device = resolve_device(name)
        if not quiet:
            print(describe_device(device))
        return device
    device = distributed.start(name)
    if not distributed.is_main():
        sys.stdout = open(os.devnull, "w")
    elif not quiet:
        backend = "nccl" if device.type == "cuda" else "gloo"
        print(f"{describe_device(device)} [rank 0 of {distributed.world_size()}, {backend}]")
    return device


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", metavar="N",
                        help="torch CPU threads (default: torch's choice; 1 is often several times faster on a busy "
                             "machine, where threads wait for each other)")


def threads_from(args: argparse.Namespace) -> int | None:
    """The ``--threads`` of a command: a positive integer, or None for torch's choice.

    Parsed here rather than by an argparse type so a bad value gets the project's one-line error.
    """
    text = getattr(args, "threads", None)
    if text is None:
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise NeuralFieldsError(f"--threads: expected a positive integer, got '{text}'") from None
    if value < 1:
        raise NeuralFieldsError(f"--threads: expected a positive integer, got {value}")
    return value


def command_line(parser: argparse.ArgumentParser, args: argparse.Namespace, drop: tuple[str, ...] = ()) -> list[str]:
    """Options that reproduce ``args`` when parsed by ``parser`` (those in ``drop`` left out):
    what a relaunched command is started with. Options left at their default are omitted."""
    argv: list[str] = []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest in drop or value is None or value == action.default:
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:  # store_true and friends
            argv.append(flag)
        elif isinstance(value, list):  # append
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv
