"""Run-folder I/O below the training loop: config, atomic checkpoints, metrics, eval and images.

A run folder: ``config.json``, ``checkpoints/step_XXXXXX.pt``, ``metrics.jsonl``,
``summary.json``, ``eval/<split>/``. Everything that reads a finished run (model loading, eval,
render, export, distillation, the viewer) imports from here, never from ``train``.
"""

from .checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from .folder import RunFolder, save_png

__all__ = ["RunFolder", "latest_checkpoint", "list_checkpoints", "load_checkpoint", "save_checkpoint", "save_png"]
