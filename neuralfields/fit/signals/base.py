"""What ``neuralfields fit`` fits: a signal, values on a regular grid of coordinates in ``[-1, 1]^D``.

Every kind (an image, an audio clip, a video, a shape) is one module with one :class:`Signal`
subclass, registered in :data:`SIGNALS` with :func:`register_signal`; it names the file
suffixes it reads, reads a file into a grid of values, and scores and writes a reconstruction.
The fitting loop (:mod:`neuralfields.fit.fitting`) knows only this interface.

Values are ``[*grid, C]`` floats in ``[0, 1]`` (the range of the fields' sigmoid outputs;
each kind maps its own values there and back). Flat index ``i`` is the row-major position in
the grid; its coordinates are the cell centre ``(j + 0.5) / n * 2 - 1`` along each array axis,
listed last axis first: an image ``[H, W]`` has coordinates ``(x, y)``, a video ``[T, H, W]``
``(x, y, t)``, a volume ``[Z, Y, X]`` ``(x, y, z)``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from ...errors import file_error
from ...registry import Registry
from ...run.metrics import psnr


@dataclass
class ReadOptions:
    """How to read and subsample a signal file. Each kind reads some of these (``Signal.uses``);
    ``None`` is "not given", so a flag meant for another kind is refused instead of ignored."""

    size: int | None = None  # image, video: longest side in pixels; shape: grid cells per axis
    frames: int | None = None  # video: keep the first N frames
    seconds: float | None = None  # audio: keep the first S seconds
    target: str | None = None  # shape: occupancy (default) | sdf
    max_samples: int = 1 << 24  # refuse signals with more grid samples than this


class Signal:
    """A grid of values to fit; see the module docstring.

    Subclasses set the class attributes and implement :meth:`read`, and override
    :meth:`metrics`, :meth:`write`, :meth:`field_defaults` and :meth:`record` where their kind
    has more to say than the defaults here.

    Attributes:
        values: ``[*grid, C]`` float32 in ``[0, 1]`` on the CPU; targets: the same as ``[N, C]``.
        source: where it came from (a file name) for messages and the metrics file.
    """

    kind: ClassVar[str] = "signal"  # a bare grid of values (tests, benchmarks); kinds name themselves
    suffixes: ClassVar[tuple[str, ...]] = ()
    folders: ClassVar[bool] = False  # reads a folder (of video frames)
    uses: ClassVar[frozenset[str]] = frozenset()  # the ReadOptions fields this kind reads
    subsample_hint: ClassVar[str] = ""  # how to make a signal of this kind smaller

    def __init__(self, values: np.ndarray | Tensor, source: str = ""):
        values = torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32)
        self.values, self.source = values, source
        self.grid: tuple[int, ...] = tuple(values.shape[:-1])
        self.targets = values.reshape(-1, values.shape[-1])

    @classmethod
    def read(cls, path: Path, options: ReadOptions) -> "Signal":
        raise NotImplementedError

    # ------------------------------------------------------------------------------ geometry
    @property
    def in_dim(self) -> int:
        return len(self.grid)

    @property
    def out_dim(self) -> int:
        return self.targets.shape[1]

    @property
    def count(self) -> int:
        return self.targets.shape[0]

    def coords_at(self, idx: Tensor) -> Tensor:
        """Coordinates ``[B, D]`` of flat indices ``idx [B]`` (on their device)."""
        out = []
        for size in reversed(self.grid):
            out.append((idx % size + 0.5) / size * 2 - 1)
            idx = torch.div(idx, size, rounding_mode="floor")
        return torch.stack(out, dim=-1).float()

    @property
    def coords(self) -> Tensor:
        """Every sample's coordinates ``[N, D]`` (built on each call: large signals index instead)."""
        return self.coords_at(torch.arange(self.count))

    def at(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """``(coords [B, D], targets [B, C])`` of flat indices ``idx [B]``."""
        return self.coords_at(idx), self.targets[idx.to(self.targets.device)]

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` samples drawn uniformly: ``(coords [n, D], targets [n, C])``. Training draws its
        batches through :class:`~neuralfields.selection.IndexDraw` and :meth:`at` instead, so the
        selection (INT, error maps) works for every kind."""
        return self.at(torch.randint(0, self.count, (n,), generator=generator))

    def importance(self) -> Tensor:
        """Per-sample weights ``[N]`` for fields with a data-dependent initialisation: the
        gradient magnitude of the values."""
        return gradient_magnitude(self.values).reshape(-1)

    def reconstruction(self, pred: Tensor) -> np.ndarray:
        """Predictions ``[N, C]`` as the signal's grid ``[*grid, C]``."""
        return pred.reshape(*self.grid, -1).numpy()

    # ------------------------------------------------------------------- per-kind behaviour
    def field_defaults(self, field: str) -> dict:
        """Options of field ``field`` suited to this signal (under the user's own); none by default."""
        return {}

    def metrics(self, pred: Tensor) -> dict:
        """Scores of predictions ``[N, C]`` (CPU, in ``[0, 1]``); ``psnr`` always (the loop shows it)."""
        return {"psnr": psnr(pred, self.targets)}

    def write(self, pred: Tensor, out_dir: Path) -> dict[str, Path]:
        """Write the reconstruction of predictions ``[N, C]`` into ``out_dir``; the paths by name.

        It takes the predictions rather than the field: the final evaluation has just computed
        them, and a second pass over a large signal would cost as much again."""
        raise NotImplementedError

    def record(self) -> dict:
        """What the run's config and metrics record about the signal."""
        return {"kind": self.kind, "grid": list(self.grid), "channels": self.out_dim}

    def describe(self) -> str:
        """One line for the console."""
        return f"{self.kind}: {self.source} ({' x '.join(map(str, self.grid))}, {self.out_dim} channels)"


SIGNALS: Registry[type[Signal]] = Registry("signal kind")


def register_signal(cls: type[Signal]) -> type[Signal]:
    """Class decorator: ``neuralfields fit`` reads files with ``cls.suffixes`` (or folders) as ``cls``."""
    SIGNALS.register(cls.kind, cls)
    return cls


def supported() -> str:
    names = sorted({s for cls in SIGNALS.values() for s in cls.suffixes})
    folders = [cls.kind for cls in SIGNALS.values() if cls.folders]
    return ", ".join(names) + (f", or a folder of frames ({', '.join(folders)})" if folders else "")


def kind_of(path: Path) -> type[Signal]:
    """The signal kind that reads ``path``, by its suffix (or, for a folder, the kind that reads folders)."""
    if path.is_dir():
        found = [cls for cls in SIGNALS.values() if cls.folders]
    else:
        found = [cls for cls in SIGNALS.values() if path.suffix.lower() in cls.suffixes]
    if not found:
        raise file_error(path, f"cannot fit a '{path.suffix or path.name}' file; fit reads {supported()}")
    return found[0]


def read_signal(path: str | Path, options: ReadOptions | None = None) -> Signal:
    """Read ``path`` as the signal kind its suffix names, with ``options`` (subsampling, target)."""
    path, options = Path(path), options or ReadOptions()
    if not path.exists() and not path.suffix:
        raise file_error(path, "no such file or folder")
    cls = kind_of(path)
    given = [f.name for f in dataclasses.fields(ReadOptions)
             if f.default is None and getattr(options, f.name) is not None and f.name not in cls.uses]
    if given:
        flags = ", ".join(f"--{name}" for name in given)
        uses = ", ".join(f"--{name}" for name in sorted(cls.uses)) or "none of them"
        raise file_error(path, f"{flags} does not apply to {cls.kind} signals (they take {uses})")
    if not path.exists():
        raise file_error(path, f"{cls.kind} file not found")
    signal = cls.read(path, options)
    check_size(path, cls, signal.count, signal.out_dim, options.max_samples, signal.describe())
    return signal


def require(path: Path, modules: tuple[str, ...], extra: str) -> None:
    """One line naming the extra to install when a kind's optional dependencies are missing."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise file_error(path, f"reading this needs {module} (pip install 'neuralfields[{extra}]')") from None


def available_memory() -> int | None:
    """Bytes of memory free now, where the system says (Linux), else None."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_size(path: Path, cls: type[Signal], count: int, channels: int, limit: int, what: str) -> None:
    """Refuse a signal of ``count`` samples that is over ``limit`` or would not fit in memory,
    saying how to subsample it. Kinds call it before decoding everything where they can."""
    # Targets, one prediction and the error map, in float32, and twice that for the copies made
    # on the way (reading, reshaping): a rough bound that errs on the side of refusing late.
    needed = count * (2 * channels + 1) * 4 * 2
    free = available_memory()
    if count > limit or (free is not None and needed > free):
        why = (f"more than --max-samples {limit:,}" if count > limit
               else f"needs about {needed / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free")
        raise file_error(path, f"{what} is {count:,} samples, {why}; subsample it: {cls.subsample_hint}")


def gradient_magnitude(values: Tensor) -> Tensor:
    """Central-difference gradient magnitude ``[*grid]`` of ``values [*grid, C]`` (zero on the
    border, summed over channels)."""
    total = torch.zeros_like(values)
    for axis in reversed(range(values.dim() - 1)):  # x first: the 2D original's order of the sum
        n = values.shape[axis]
        g = torch.zeros_like(values)
        if n > 2:
            g.narrow(axis, 1, n - 2).copy_((values.narrow(axis, 2, n - 2) - values.narrow(axis, 0, n - 2)) / 2)
        total = total + g.square()
    return total.sum(-1).sqrt()


def merge_options(defaults: dict, options: dict) -> dict:
    """``options`` over ``defaults``, nested dicts merged key by key (``--set`` wins)."""
    out = dict(defaults)
    for key, value in options.items():
        out[key] = merge_options(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
