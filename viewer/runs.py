"""Run folders the viewer may open: discovery under one root, a small model cache, facts to show.

The browser only ever names a run from the list found under the root given on the command line;
names are looked up here, so no path typed in a page reaches the file system.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from neuralfields.camera_paths import SceneFrame, estimate_scene_frame, vertical_fov
from neuralfields.errors import NeuralFieldsError
from neuralfields.bake import BakeConfig, BakeProgress, fast_model
from neuralfields.scene_model import SceneModel, load_model
from neuralfields.run.checkpoints import list_checkpoints

log = logging.getLogger("neuralfields.viewer")

SEARCH_DEPTH = 2  # runs/<run> and runs/<group>/<run>
SHOWN_ABOVE = ("steps", "num_parameters")  # summary.json keys the info table already shows


def find_runs(root: str | Path) -> dict[str, Path]:
    """``{name: folder}`` of run folders (holding ``config.json``): ``root`` itself or those below it.

    Names are paths relative to ``root`` (the folder's own name when ``root`` is a run); folders
    inside a run are not searched, so a run's ``eval/`` or ``export/`` never counts as a run.
    """
    root = Path(root)
    if not root.is_dir():
        raise NeuralFieldsError(f"{root}: folder does not exist")
    if (root / "config.json").is_file():
        return {root.resolve().name: root}
    runs: dict[str, Path] = {}
    level = [root]
    for _ in range(SEARCH_DEPTH):
        below = []
        for folder in level:
            for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if (child / "config.json").is_file():
                    runs[child.relative_to(root).as_posix()] = child
                else:
                    below.append(child)
        level = below
    return runs


def checkpoint_stamp(path: Path) -> tuple[str, float] | None:
    """Newest checkpoint's name and mtime: a newer one (training still running) triggers a reload."""
    found = list_checkpoints(path)
    if not found:
        return None
    try:
        return found[-1].name, found[-1].stat().st_mtime
    except OSError:  # removed between listing and stat by a trainer pruning old checkpoints
        return None


@dataclass
class LoadedRun:
    name: str
    path: Path
    model: SceneModel  # the live field (meshes, point clouds, facts)
    state: dict
    frame: SceneFrame  # orbit centre, up, median distance and per-camera angles of the training cameras
    stamp: tuple[str, float] | None
    view_model: SceneModel  # what pictures and videos render with: the run's bake, or the live model
    renderer: str  # which one, in words

    @property
    def dynamic(self) -> bool:
        return bool(self.model.info.dynamic)

    @property
    def num_cameras(self) -> int:
        return len(self.model.info.cameras)

    @property
    def aspect(self) -> float:
        """Width / height of the training images (views keep it)."""
        cams = self.model.info.cameras
        return float(cams.width[0]) / float(cams.height[0])


class RunLibrary:
    """Runs under ``root`` and the few most recently used models, loaded on demand."""

    def __init__(self, root: str | Path, capacity: int = 2, device: str = "cpu", exact: bool = False,
                 bake: BakeConfig | None = None):
        self.root = Path(root)
        self.capacity = max(1, capacity)
        self.runs = find_runs(self.root)
        if not self.runs:
            raise NeuralFieldsError(f"{self.root}: no run folders (folders with config.json) found")
        self._loaded: OrderedDict[str, LoadedRun] = OrderedDict()
        self.device, self.exact, self.bake = device, exact, bake
        self._lock = threading.Lock()

    def names(self, rescan: bool = False) -> list[str]:
        if rescan:
            found = find_runs(self.root)
            if found:
                self.runs = found
        return list(self.runs)

    def path(self, name: str | None) -> Path:
        if not name:
            raise NeuralFieldsError("choose a run first")
        if name not in self.runs:
            self.names(rescan=True)  # it may have appeared since the page was built
        if name not in self.runs:
            raise NeuralFieldsError(f"unknown run '{name}'; choose one of: {', '.join(self.runs)}")
        path = self.runs[name]
        if not (path / "config.json").is_file():
            raise NeuralFieldsError(f"run '{name}' is gone (no config.json any more)")
        return path

    def _load(self, folder: Path, report: Callable[[BakeProgress], None] | None = None
              ) -> tuple[SceneModel, dict, SceneModel, str]:
        """The one place the viewer reads a model from a run folder: the live model, its state, and
        the model pictures render with (the run's bake, made on first use unless ``exact``, its
        stages followed by ``report``)."""
        model, state = load_model(folder, device=self.device)
        view, how = fast_model(model, state, folder, exact=self.exact, cfg=self.bake, say=log.info, report=report)
        return model, state, view, how

    def get(self, name: str | None, report: Callable[[BakeProgress], None] | None = None) -> LoadedRun:
        """The loaded run, reloaded when a newer checkpoint appeared; least recently used ones are
        dropped. ``report`` follows a bake made while loading (see :func:`neuralfields.bake.fast_model`)."""
        path = self.path(name)
        with self._lock:
            stamp = checkpoint_stamp(path)
            run = self._loaded.get(name)
            if run is None or (stamp is not None and stamp != run.stamp):
                model, state, view, how = self._load(path, report)
                frame = estimate_scene_frame(model.info.cameras, model.info.aabb)
                run = LoadedRun(name, path, model, state, frame, stamp, view, how)
                self._loaded[name] = run
            self._loaded.move_to_end(name)
            while len(self._loaded) > self.capacity:
                self._loaded.popitem(last=False)
            return run


# ------------------------------------------------------------------------------------ facts


@dataclass
class OrbitPose:
    """Orbit controls that reproduce a training camera's position (azimuth 0 = camera 0's side)."""

    azimuth: float  # degrees in (-180, 180]
    elevation: float  # degrees
    distance: float  # multiple of the median training distance
    fov: float  # vertical, degrees
    time: float | None


def age_text(seconds: float) -> str:
    """``42 s``, ``3 min``, ``5 h``, ``2 days``: how long ago, to the unit that reads best."""
    seconds = max(0.0, float(seconds))
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (2 if unit == "day" else 1):
            n = int(seconds // size)
            return f"{n} {unit}{'s' if unit == 'day' and n != 1 else ''}"
    return f"{int(seconds)} s"


def checkpoint_note(run: LoadedRun, now: float | None = None) -> str:
    """``checkpoint step 1200, saved 3 min ago``: which checkpoint the page shows and how old it is."""
    step = run.state.get("step", "?")
    if run.stamp is None:
        return f"checkpoint step {step}"
    return f"checkpoint step {step}, saved {age_text((now or time.time()) - run.stamp[1])} ago"


def training_pose(run: LoadedRun, index: int) -> OrbitPose:
    frame, cams = run.frame, run.model.info.cameras
    azimuth = math.degrees(frame.azimuths[index] - frame.azimuths[0])
    azimuth = (azimuth + 180.0) % 360.0 - 180.0
    if azimuth == -180.0:
        azimuth = 180.0
    origin = cams.c2w[index, :, 3].double().numpy()
    distance = float(np.linalg.norm(origin - frame.centre)) / max(frame.radius, 1e-12)
    times = run.model.info.times
    time = float(times[index]) if run.dynamic and times is not None else None
    return OrbitPose(azimuth, math.degrees(frame.elevations[index]), distance,
                     float(vertical_fov(cams[index])[0]), time)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _figure(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def eval_metrics(path: Path) -> dict[str, dict]:
    """``{split: metrics}`` from ``eval/<split>/metrics.json`` (unreadable files are left out)."""
    out = {}
    for file in sorted((path / "eval").glob("*/metrics.json")):
        data = _read_json(file)
        if data is not None:
            out[file.parent.name] = data
    return out


def duration_text(seconds: float) -> str:
    """``10-minute``, ``2-hour``, ``90-second``: a time budget as an adjective."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}-{unit}"
    return f"{seconds:g}-second"


def training_steps(run: LoadedRun, summary: dict | None) -> str:
    """``300 of 300``; ``2,082 (ended on its 10-minute time budget)`` for a run the budget stopped
    (``summary.json`` written, fewer steps than planned, training time at the config's budget)."""
    step, planned = run.state.get("step", "?"), run.model.cfg.train.steps
    budget = run.model.cfg.train.time_budget
    if budget is None:
        return f"{_figure(step)} of {_figure(planned)}"
    seconds, done = (summary or {}).get("train_seconds"), (summary or {}).get("steps")
    if isinstance(seconds, (int, float)) and isinstance(done, int) and done < planned and seconds >= budget:
        return f"{_figure(step)} (ended on its {duration_text(budget)} time budget)"
    if summary is None:  # still training (or stopped before its end): either limit may end it
        return f"{_figure(step)} of {_figure(planned)} (or its {duration_text(budget)} time budget)"
    return f"{_figure(step)} of {_figure(planned)}"


def describe_run(run: LoadedRun) -> str:
    """Markdown facts: field, parameters, steps, scene, ``summary.json`` and eval metrics."""
    cfg, info = run.model.cfg, run.model.info
    cams = info.cameras
    summary = _read_json(run.path / "summary.json")
    lines = [
        f"| run | {run.name} |", "|---|---|",
        f"| field | `{cfg.field.name}` |",
        f"| parameters | {run.model.field.num_parameters:,} |",
        f"| training steps | {training_steps(run, summary)} |",
        f"| {checkpoint_note(run).replace('checkpoint ', 'checkpoint | ', 1)} |",
        f"| views render with | {run.renderer} |",
        f"| training cameras | {len(cams)} at {int(cams.width[0])}x{int(cams.height[0])} |",
        f"| dynamic | {'yes (time slider)' if info.dynamic else 'no'} |",
    ]
    if summary:
        shown = {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and k not in SHOWN_ABOVE}
        lines += [f"| {k.replace('_', ' ')} | {_figure(v)} |" for k, v in shown.items()]
    else:
        lines.append("| summary.json | not written yet (training unfinished?) |")
    for split, m in eval_metrics(run.path).items():
        parts = [f"PSNR {m['psnr']:.2f} dB" if isinstance(m.get("psnr"), (int, float)) else None,
                 f"SSIM {m['ssim']:.4f}" if isinstance(m.get("ssim"), (int, float)) else None,
                 f"{len(m['images'])} images" if isinstance(m.get("images"), list) else None,
                 f"step {m['step']}" if "step" in m else None]
        lines.append(f"| eval {split} | {', '.join(p for p in parts if p) or 'no figures'} |")
    return "\n".join(lines)
