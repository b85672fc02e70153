"""What a loop does every so many steps, as small parts it composes: checkpoints and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..run.checkpoints import latest_checkpoint, list_checkpoints
from ..run.folder import RunFolder


@dataclass
class Every:
    """Due every ``n`` steps (0: never) and at the ``extra`` steps."""

    n: int = 0
    extra: set[int] = field(default_factory=set)

    def due(self, step: int) -> bool:
        return bool(self.n and step % self.n == 0) or step in self.extra


class Checkpoints:
    """Atomic checkpoints of a run folder (None: nothing is written) at a cadence."""

    def __init__(self, run: RunFolder | None, every: Every):
        self.run, self.every = run, every

    def save(self, step: int, state: Callable[[], dict]) -> Path | None:
        """Write ``state()`` as the checkpoint of ``step``; its path, or None without a run folder."""
        return None if self.run is None else self.run.save_checkpoint(step, state())

    def newest(self) -> tuple[Path, dict] | None:
        """The newest good checkpoint and its contents, or None."""
        return None if self.run is None else latest_checkpoint(self.run.path)

    def last_path(self) -> str:
        """The newest checkpoint file, for messages."""
        found = [] if self.run is None else list_checkpoints(self.run.path)
        return str(found[-1]) if found else "none"


class Validation:
    """Scores the model on held-out data (``validate() -> {"psnr", "ssim", ...}``) at a cadence and
    keeps every result, stamped with its step and training seconds."""

    def __init__(self, validate: Callable[[], dict] | None, every: Every):
        self.validate, self.every = validate, every
        self.results: list[dict] = []

    @property
    def last(self) -> dict | None:
        return self.results[-1] if self.results else None

    def __call__(self, step: int, seconds: float) -> dict:
        if self.validate is None:
            return {}
        result = {**self.validate(), "step": step, "seconds": seconds}
        self.results.append(result)
        return result
