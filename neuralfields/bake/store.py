"""Bake files in a run folder, tied to the checkpoint they came from, and the model that renders one.

``<run>/baked/step_XXXXXX.pt`` holds the lattice of checkpoint ``step_XXXXXX.pt``, its bake
settings and a fingerprint of the trained weights it was baked from (a SHA-256 over the field's
and appearance codes' tensors), so a bake is used only with the very weights it caches: a file
baked from other weights is refused in one line. :func:`fast_model` is what ``render``,
``eval --baked`` and the viewer call: the newest bake of the checkpoint, baked and saved on the
spot when there is none (saying first how large the file will be), or the live field with
``exact`` (and always for dynamic runs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path
from typing import Callable

import torch

from ..config import from_dict
from ..errors import NeuralFieldsError, file_error
from ..scene_model import SceneModel
from ..run.checkpoints import save_atomic
from .build import Bake, BakeConfig, BakeProgress, Report, bake
from .field import BakedField

BAKE_DIR = "baked"
FORMAT = 2  # 2: the sampler's own cache beside the lattice
KEEP = 2  # bake files kept per run (older checkpoints' bakes are deleted)


def fingerprint(state: dict) -> str:
    """SHA-256 (hex, 16 digits) of the trained tensors a bake caches: the field and appearance codes."""
    digest = hashlib.sha256()
    for part in ("field", "appearance"):
        for name, tensor in sorted((state.get(part) or {}).items()):
            digest.update(f"{part}.{name}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def mib(nbytes: int) -> str:
    """Bytes in MiB as a bake's size is said: whole MiB, tenths below 10."""
    value = nbytes / 2**20
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def bake_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / BAKE_DIR / f"step_{int(step):06d}.pt"


def save_bake(path: str | Path, baked: Bake, cfg: BakeConfig, state: dict, seconds: float) -> Path:
    """Write a bake file atomically; older bakes in the same folder beyond the newest ``KEEP`` go."""
    path = save_atomic({"format": FORMAT, "fingerprint": fingerprint(state), "step": int(state.get("step", 0)),
                        "config": dataclasses.asdict(cfg), **baked.state(), "seconds": float(seconds)}, path)
    for old in sorted(path.parent.glob("step_*.pt"))[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def read_bake(path: str | Path, state: dict) -> tuple[Bake, BakeConfig]:
    """The bake and settings of bake file ``path``, refused unless it was baked from ``state``'s weights."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise file_error(path, "bake file not found") from None
    except Exception as exc:  # truncated or foreign files raise many types
        raise file_error(path, f"unreadable bake file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "lattice" not in data:
        raise file_error(path, "not a neuralfields bake file (or one of another version): bake again")
    if data["fingerprint"] != fingerprint(state):
        raise file_error(path, f"baked from other weights (step {data['step']}) than this checkpoint "
                               f"(step {state.get('step', '?')}): bake again with 'neuralfields bake RUN' or use --exact")
    return Bake.from_state(data), from_dict(BakeConfig, data["config"], str(path))


def baked_model(model: SceneModel, baked: Bake, cfg: BakeConfig) -> SceneModel:
    """A model that renders ``model``'s scene from ``baked`` (same space, appearance codes and
    colour head; the live field stays reachable as ``field.source``)."""
    baked.lattice.to(model.device)
    sampler = baked.sampler_module(model, cfg.march)
    field = BakedField(model.field, baked.lattice).eval()
    render_cfg = model.cfg.render
    if baked.placement.whole_views:
        # Whole views in one chunk: a baked ray costs little memory, and each chunk pays the
        # marching's fixed work (coarse steps, waves) once.
        render_cfg = dataclasses.replace(render_cfg, chunk_rays=max(render_cfg.chunk_rays, cfg.chunk_rays))
    return SceneModel(field, model.space, sampler, model.info, model.cfg, model.appearance, render_cfg,
                      cfg.ray_color_below)


SAVE_STAGE = "saving"


def bake_run(model: SceneModel, state: dict, run_dir: str | Path, cfg: BakeConfig | None = None,
             out: str | Path | None = None, progress: bool = False,
             report: Report | None = None) -> tuple[Bake, Path, float]:
    """Bake ``model`` (loaded from ``state``) and save it as the run's bake of that checkpoint
    (or to ``out``); returns the bake, the file and the seconds it took. ``report`` follows the
    bake's stages (:class:`BakeProgress`), saving last."""
    cfg = (cfg or BakeConfig()).resolved(model.field)
    start = time.perf_counter()
    baked = bake(model, cfg, progress=progress, report=report)
    if report is not None:
        report(BakeProgress(SAVE_STAGE, 0, 1, "files", baked.nbytes))
    seconds = time.perf_counter() - start
    path = save_bake(out or bake_path(run_dir, state.get("step", 0)), baked, cfg, state, seconds)
    if report is not None:
        report(BakeProgress(SAVE_STAGE, 1, 1, "files", baked.nbytes))
    return baked, path, seconds


def fast_model(model: SceneModel, state: dict, run_dir: str | Path, exact: bool = False,
               bake_file: str | Path | None = None, cfg: BakeConfig | None = None, progress: bool = False,
               say: Callable[[str], None] = print, report: Report | None = None) -> tuple[SceneModel, str]:
    """The model to render ``model`` (loaded from ``state`` in ``run_dir``) with, and one line on which it is.

    The run's bake of that checkpoint when it exists and matches; otherwise the checkpoint is
    baked now and the bake saved for next time (``say`` announces it, then its expected size once
    the blocks that show are known, before the lattice is filled; ``report`` follows its stages).
    ``bake_file`` names a bake to use instead, which must match. ``exact`` or a dynamic run: ``model`` itself.
    """
    step = state.get("step", "?")
    if exact or model.info.dynamic:
        if bake_file is not None:
            raise NeuralFieldsError("--baked and --exact exclude each other" if exact
                                    else f"{bake_file}: dynamic runs render with the live field; drop --baked")
        return model, f"live field (step {step}{', dynamic run' if model.info.dynamic else ''})"
    if bake_file is not None:
        baked, baked_cfg = read_bake(bake_file, state)
        return baked_model(model, baked, baked_cfg), f"baked field {bake_file}"
    path = bake_path(run_dir, state.get("step", 0))
    if path.is_file():
        try:
            baked, baked_cfg = read_bake(path, state)
            return baked_model(model, baked, baked_cfg), f"baked field {path}"
        except NeuralFieldsError as exc:
            say(f"baking again: {exc}")
    say(f"baking step {step} for fast rendering (once; 'neuralfields bake' does it ahead, --exact skips it)")
    folder, sized = path.parent, False

    def relay(where: BakeProgress) -> None:
        nonlocal sized
        if where.expected_bytes is not None and not sized:
            sized = True
            say(f"baking about {mib(where.expected_bytes)} MiB into {folder}{os.sep}")
        if report is not None:
            report(where)

    cfg = cfg or BakeConfig()
    baked, path, seconds = bake_run(model, state, run_dir, cfg, progress=progress, report=relay)
    say(f"baked in {seconds:.1f} s: {baked.lattice.kept_blocks:,} blocks, {mib(baked.nbytes)} MiB -> {path}")
    return baked_model(model, baked, cfg), f"baked field {path}"
