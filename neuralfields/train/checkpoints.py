"""Atomic checkpoint files in ``<run>/checkpoints/step_XXXXXX.pt``.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed
over its final name, so a crash at any moment leaves either the old file set or the new one;
readers skip files that fail to load and take the newest good one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..errors import file_error

PATTERN = re.compile(r"step_(\d+)\.pt$")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: str | Path, step: int, state: dict, keep: int = 3) -> Path:
    """Write ``state`` atomically and keep only the ``keep`` newest checkpoints."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step_{step:06d}.pt"
    tmp = folder / f".{final.name}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return final


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint files sorted by step (oldest first)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := PATTERN.search(p.name))]
    return [p for _, p in sorted(found)]


def load_checkpoint(path: str | Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise file_error(path, "checkpoint not found") from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise file_error(path, f"unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or "field" not in state:
        raise file_error(path, "not a neuralfields checkpoint")
    return state


def latest_checkpoint(run_dir: str | Path) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads, or None when there is none."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path)
        except Exception:
            continue
    return None
