"""Atomic checkpoint files in ``<run>/checkpoints/step_XXXXXX.pt``.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed
over its final name, so a crash at any moment leaves either the old file set or the new one;
readers skip files that fail to load and take the newest good one.

Checkpoints hold tensors and plain containers only and are read with ``weights_only=True``: a
run folder travels between machines and people, and unpickling arbitrary objects would run
whatever code a file carries. A file that holds anything else is refused in one line, which
says how to convert it if its source is trusted (:func:`convert_checkpoint`).
"""

from __future__ import annotations

import os
import pickle
import re
import sys
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import file_error

PATTERN = re.compile(r"step_(\d+)\.pt$")
MODEL_KEYS = ("field", "splats")  # what a run's model saves: a field, or Gaussians (neuralfields.splats.model)


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_atomic(state: dict, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, flushed to disk and renamed over it."""
    final = Path(path)
    with atomic_path(final, durable=True) as tmp:
        torch.save(state, tmp)
    return final


def save_checkpoint(run_dir: str | Path, step: int, state: dict, keep: int = 3) -> Path:
    """Write ``state`` atomically and keep only the ``keep`` newest checkpoints."""
    folder = checkpoint_dir(run_dir)
    final = save_atomic(state, folder / f"step_{step:06d}.pt")
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


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint safely (tensors and plain containers only) onto ``map_location``."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise file_error(path, "checkpoint not found") from None
    except pickle.UnpicklingError as exc:
        what = str(exc).split("Unsupported global:")[-1].strip().splitlines()[0] if "Unsupported global" in str(exc) \
            else "objects other than tensors and plain containers"
        raise file_error(path, f"refusing to load: the checkpoint holds {what}, which could run code; if you trust "
                               f"this file, convert it with: python -m neuralfields.run.checkpoints {path}") from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise file_error(path, f"unreadable checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(state, dict) or not any(key in state for key in MODEL_KEYS):
        raise file_error(path, "not a neuralfields checkpoint")
    return state


def latest_checkpoint(run_dir: str | Path, map_location: str | torch.device = "cpu") -> tuple[Path, dict] | None:
    """The newest checkpoint that loads, or None when there is none."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path, map_location)
        except Exception:
            continue
    return None


def plain(value):
    """``value`` with numpy arrays and scalars, tuples and other sequences turned into tensors,
    numbers and lists (what ``weights_only`` loading accepts)."""
    import numpy as np

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value) if isinstance(value, tuple) else [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot convert {type(value).__name__} to a plain value")


def convert_checkpoint(path: str | Path) -> Path:
    """Rewrite a trusted old checkpoint with plain values only (the original is kept as ``.orig``)."""
    path = Path(path)
    state = torch.load(path, map_location="cpu", weights_only=False)
    try:
        converted = plain(state)
    except TypeError as exc:
        raise file_error(path, f"cannot convert: {exc}") from None
    backup = path.with_name(path.name + ".orig")
    os.replace(path, backup)
    with open(path, "wb") as f:
        torch.save(converted, f)
    return path


if __name__ == "__main__":  # python -m neuralfields.run.checkpoints FILE...
    for name in sys.argv[1:]:
        print(f"converted {convert_checkpoint(name)} (original kept as {name}.orig)")
