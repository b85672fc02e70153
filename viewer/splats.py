"""Gaussian splats for the Splats tab: the run's distilled splats, or splats made here with a short
budget, as INRIA ``.ply`` files that ``gr.Model3D`` draws in the browser (gsplat.js, WebGL 2).

- A run with ``RUN/splats/`` (``neuralfields distill RUN --student gaussians``) shows its newest
  splat checkpoint, exported once per checkpoint.
- A run without: :meth:`SplatShelf.make` distils the run's live field for ``ViewerConfig.splat_steps``
  steps at ``splat_resolution`` px (:func:`~neuralfields.distill.gaussians.splat_distill_trainer`
  with no run folder). The Gaussians stay in memory for the checkpoint they were made from;
  nothing is written into run folders.

Files go to the viewer's output folder in the splat-viewer frame (scene centre at the origin,
up = -y, training cameras 5 units away: :func:`neuralfields.export.splat.scene_transform`), the
frame gsplat.js's orbit camera starts in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from neuralfields.distill.gaussians import SplatDistillConfig, load_photos, splat_distill_trainer, splat_student_config
from neuralfields.errors import NeuralFieldsError
from neuralfields.export.splat import scene_transform
from neuralfields.splats.io import save_ply
from neuralfields.splats.model import SPLATS_FOLDER, load_splats
from neuralfields.splats.scene import GaussianScene

from .core import Viewer
from .runs import LoadedRun, checkpoint_stamp

log = logging.getLogger("neuralfields.viewer")

Report = Callable[[str, int, int], None]  # (stage, steps done, steps planned)


@dataclass
class MadeSplats:
    """Splats distilled in this viewer from one checkpoint of a run."""

    stamp: tuple[str, float] | None  # the teacher checkpoint they were made from (LoadedRun.stamp)
    scene: GaussianScene
    transform: np.ndarray  # [4, 4] world -> splat-viewer frame
    note: str  # how they were made, for the status line


@dataclass
class Shown:
    """A ``.ply`` for the page and its status line."""

    path: Path
    status: str


class SplatShelf:
    """The splats the Splats tab shows, per run; exported files are reused while they exist."""

    def __init__(self, viewer: Viewer):
        self.viewer = viewer
        self._exported: dict[tuple, Shown] = {}  # (source, checkpoint stamp) -> file shown for it
        self._made: OrderedDict[str, MadeSplats] = OrderedDict()  # run name -> its newest made splats
        self._lock = threading.Lock()

    @staticmethod
    def own_folder(run: LoadedRun) -> Path | None:
        """``RUN/splats/`` when the run has a splat run there (from ``distill --student gaussians``)."""
        folder = run.path / SPLATS_FOLDER
        return folder if (folder / "config.json").is_file() else None

    def offers_making(self, run: LoadedRun) -> bool:
        """Whether the page offers *Make splats*: a static run without splats of its own or made here."""
        return not run.dynamic and self.own_folder(run) is None and self._current(run) is None

    def show(self, run: LoadedRun) -> Shown | None:
        """The run's own splats, else those made here from its current checkpoint, else None."""
        folder = self.own_folder(run)
        if folder is not None:
            return self._show_own(run, folder)
        made = self._current(run)
        return None if made is None else self._file(("made", run.name, made.stamp), made.scene, made.transform,
                                                   made.note)

    def missing(self, run: LoadedRun) -> str:
        """The status line of a run with nothing to show."""
        if run.dynamic:
            return f"{run.name} is a dynamic run: splats are static, so there are none to show."
        cfg = self.viewer.cfg
        return (f"{run.name} has no distilled splats yet. *Make splats* distils its field here for "
                f"{cfg.splat_steps} steps at up to {cfg.splat_resolution} px (a preview: the Gaussians are kept in "
                "memory while the viewer runs and shown as a .ply from the viewer's output folder; nothing is "
                f"written into the run folder). Full splats kept with the run: "
                f"`neuralfields distill RUN --student gaussians` (writes RUN/{SPLATS_FOLDER}/).")

    def make(self, run: LoadedRun, report: Report) -> Shown:
        """Distil ``run``'s live field into Gaussians with the viewer's short budget and show them.

        ``report(stage, done, total)`` follows the distillation: the initialisation from the
        teacher's point cloud, then each step (``teacher views`` or ``photographs``).
        """
        if run.dynamic:
            raise NeuralFieldsError(f"run '{run.name}' is dynamic: splats are static, so none can be made")
        folder = self.own_folder(run)
        if folder is not None:
            raise NeuralFieldsError(f"run '{run.name}' already has distilled splats ({run.name}/{SPLATS_FOLDER}/); "
                                    "the Splats tab shows them")
        viewer = self.viewer
        steps = viewer.cfg.splat_steps
        scfg = SplatDistillConfig(resolution=viewer.cfg.splat_resolution)
        cfg = splat_student_config(run.model.cfg, scfg, steps, output="")  # no run folder: nothing is written
        photos = load_photos(cfg, log.info) if scfg.photo_fraction > 0 else None
        start = time.perf_counter()
        report("initialising from the teacher's point cloud", 0, steps)
        with viewer.lock:  # the point cloud renders the run's field
            loop = splat_distill_trainer(cfg, run.model, scfg, None, None, progress=False, log=log.info, photos=photos)
        initial = len(loop.model.scene)
        # The lock is held one step at a time (each may render the teacher), so views interleave.
        for _ in viewer.locked(loop.train_step() for _ in range(steps)):
            report(loop.source.stage(loop.completed), loop.step, steps)
        scene = loop.model.scene
        scene.zero_grad(set_to_none=True)  # kept for showing only
        seconds = time.perf_counter() - start
        views = loop.source.train_cams
        side = max(int(views.width[0]), int(views.height[0]))
        note = (f"made here from {run.name} ({steps} steps at {side} px in {seconds:.0f} s; "
                f"{initial:,} Gaussians from the teacher's point cloud; kept in memory while the viewer runs)")
        made = MadeSplats(run.stamp, scene, scene_transform(run.model.info), note)
        with self._lock:
            self._made[run.name] = made
            self._made.move_to_end(run.name)
            while len(self._made) > max(1, viewer.cfg.cached_runs):
                self._made.popitem(last=False)
        return self._file(("made", run.name, made.stamp), scene, made.transform, note)

    # ------------------------------------------------------------------------------------ helpers

    def _current(self, run: LoadedRun) -> MadeSplats | None:
        """Splats made here from the run's current checkpoint (older ones are not shown)."""
        made = self._made.get(run.name)
        return made if made is not None and made.stamp == run.stamp else None

    def _show_own(self, run: LoadedRun, folder: Path) -> Shown:
        stamp = checkpoint_stamp(folder)
        if stamp is None:
            raise NeuralFieldsError(f"{run.name}/{SPLATS_FOLDER}/: the splat run has no checkpoint yet "
                                    "(is its distillation still running?)")
        key = ("own", str(folder), stamp)
        shown = self._exported.get(key)
        if shown is not None and shown.path.is_file():
            return shown
        model, state = load_splats(run.path)
        note = f"distilled into {run.name}/{SPLATS_FOLDER}/ (step {state.get('step', '?')})"
        return self._file(key, model.scene, scene_transform(model.info), note)

    def _file(self, key: tuple, scene: GaussianScene, transform, note: str) -> Shown:
        """``scene`` as a ``.ply`` in the output folder, written once per ``key`` while the file exists."""
        shown = self._exported.get(key)
        if shown is not None and shown.path.is_file():
            return shown
        path = save_ply(scene, self.viewer.files.new("splats", ".ply"), transform)
        status = (f"{len(scene):,} Gaussians (SH degree {int(scene.active_degree)}) {note}; "
                  f"{path.name}: {path.stat().st_size / 2**20:.1f} MiB")
        shown = Shown(path, status)
        with self._lock:
            self._exported = {k: v for k, v in self._exported.items() if v.path.is_file()}  # pruned files go
            self._exported[key] = shown
        return shown
