"""Argument helpers shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

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
    """The ``--device`` of a command, announced on one line."""
    device = resolve_device(getattr(args, "device", "auto"))
    if not quiet:
        print(describe_device(device))
    return device
