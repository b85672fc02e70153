"""Writing a run folder: resolved config, metrics rows, summary, images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..atomic import write_json_atomic  # also imported from here by callers
from .checkpoints import save_checkpoint


def save_png(path: Path, image: torch.Tensor) -> None:
    """Write ``[H, W, C]`` floats in [0, 1] as an 8-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (image.detach().cpu().clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(path)


class RunFolder:
    """The files of one run; ``None`` paths are never created (runs without a folder write nothing)."""

    def __init__(self, path: str | Path, keep_checkpoints: int = 3):
        self.path, self.keep = Path(path), keep_checkpoints

    def write_config(self, config: dict, name: str = "config.json") -> None:
        write_json_atomic(self.path / name, config)

    def log(self, row: dict) -> None:
        """Append one row to ``metrics.jsonl``."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.path / "summary.json", summary)

    def save_checkpoint(self, step: int, state: dict) -> Path:
        return save_checkpoint(self.path, step, state, self.keep)
