"""Distilling a trained field into 3D Gaussian splats (``distill RUN --student gaussians``).

PVD's idea (distil between any two representations) with a rasterised student:

1. **Initialisation** from the teacher: its point cloud (:func:`~neuralfields.export.pointcloud.export_pointcloud`:
   the expected depth of training-view pixels the teacher renders opaque, coloured with the
   un-premultiplied rendered colour) becomes round Gaussians sized by the spacing of their three
   nearest neighbours, at opacity 0.1, as 3DGS starts from an SfM cloud.
2. **Teacher views**: each step renders the splats into one view and compares it with the
   teacher's render of that view (3DGS's loss: ``0.8 L1 + 0.2 (1 - SSIM)``). Views are the
   training cameras and new cameras around them (:mod:`.poses`, the teacher supplies any view).
   A teacher render costs as much as many splat steps on a CPU, so renders are kept in a pool
   and a fresh one joins it every ``new_view_every`` steps.
3. **Photographs**: the last ``photo_fraction`` of the run trains on the run's own training
   images, where its dataset is present (the teacher's errors are not the target any more).

Densification, pruning and the opacity reset (:mod:`neuralfields.splats.densify`) and the SH
degree schedule follow 3DGS's cadence scaled to the step budget (3DGS: 30,000 steps, densify
from 500 to 15,000 every 100, reset every 3,000, one more SH band every 1,000). The run is built
by :func:`~neuralfields.loop.make_loop` like every other: :class:`TeacherViews` is the batch
source, :class:`SplatObjective` the objective, :class:`~neuralfields.splats.model.SplatModel` the model.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import Cameras
from ..config import FieldConfig, RunConfig
from ..data import load_data
from ..data.scene import Scene, composite_background
from ..errors import NeuralFieldsError
from ..export.pointcloud import PointCloudConfig, export_pointcloud
from ..loop import LoopConfig, Part, StepResult, TrainLoop, make_loop, seed_everything
from ..loop.schedules import BatchSize, StepDecay
from ..run.folder import RunFolder, write_json_atomic
from ..run.metrics import psnr_of, ssim_tensor
from ..scene_model import SceneModel
from ..scoring import score_model, spread_indices
from ..splats.densify import DensifyConfig, Densifier
from ..splats.model import KIND, SplatModel
from ..splats.scene import GaussianScene
from .config import PoseConfig
from .poses import PoseSampler
from .pvd import teacher_fidelity

DEFAULT_STEPS = 3000
MIN_VIEWS_PER_DENSIFY = 10
# Opacities capped at 0.01 take a few hundred steps at the 3DGS rate to come back: a short run
# resets no more often than this (and not at all when densification ends first).
MIN_RESET_EVERY = 300


@dataclass
class SplatDistillConfig:
    """Settings of a splat distillation (``--set splats.KEY=VALUE``); fractions are of the step budget."""

    resolution: int = 200  # longest side of the views distilled on (never above the training size)
    init_points: int = 100_000  # the teacher's point cloud is cut to at most this many points
    init_views: int = 24  # training views the point cloud is rendered from
    init_opacity: float = 0.1
    max_degree: int = 3  # SH degree of the colour
    pool_size: int = 64  # teacher renders kept
    new_view_every: int = 4  # steps between fresh teacher renders
    novel_fraction: float = 0.5  # share of fresh renders from new cameras around the training ones
    photo_fraction: float = 0.2  # the last share of the run trains on the photographs, where the run has them
    ssim_weight: float = 0.2
    lr: float = 1.0  # times the 3DGS learning rates
    sh_every: float = 1 / 30  # one more SH band every this share of the run
    densify_from: float = 1 / 60
    densify_until: float = 0.5
    densify_every: float = 1 / 300
    reset_every: float = 0.1
    # Thresholds of densification and pruning; its cadence (start, stop, every, reset_every) comes
    # from the fractions above.
    densify: DensifyConfig = field(default_factory=lambda: DensifyConfig(max_gaussians=300_000))

    def densify_config(self, steps: int) -> DensifyConfig:
        def at(fraction: float) -> int:
            return max(1, round(fraction * steps))

        # Each decision averages the gradients of the views seen since the last one (one view a
        # step here, against 3DGS's 100): at least MIN_VIEWS_PER_DENSIFY of them, in short runs
        # and in runs paced by time too.
        every = max(MIN_VIEWS_PER_DENSIFY, at(self.densify_every))
        reset = max(MIN_RESET_EVERY, at(self.reset_every)) if self.reset_every > 0 else 0
        return dataclasses.replace(self.densify, start=max(every, at(self.densify_from)), stop=at(self.densify_until),
                                   every=every, reset_every=reset, min_views=MIN_VIEWS_PER_DENSIFY)

    def validate(self) -> "SplatDistillConfig":
        """Reject values the distiller cannot use (after ``--set``), naming the key."""
        if not isinstance(self.densify, DensifyConfig):
            raise NeuralFieldsError("splats.densify: set its values one by one, e.g. splats.densify.max_gaussians=100000")
        for key in ("resolution", "init_points", "init_views", "pool_size", "new_view_every"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise NeuralFieldsError(f"splats.{key}: expected a positive integer, got {value!r}")
        cap = self.densify.max_gaussians
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            raise NeuralFieldsError(f"splats.densify.max_gaussians: expected a positive integer or null, got {cap!r}")
        fractions = ("init_opacity", "novel_fraction", "photo_fraction", "ssim_weight", "sh_every", "densify_from",
                     "densify_until", "densify_every", "reset_every")
        for key in fractions:
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise NeuralFieldsError(f"splats.{key}: expected a fraction in [0, 1], got {value!r}")
        if self.max_degree not in (0, 1, 2, 3):
            raise NeuralFieldsError(f"splats.max_degree: expected 0, 1, 2 or 3, got {self.max_degree!r}")
        if not 0 < self.init_opacity < 1:
            raise NeuralFieldsError(f"splats.init_opacity: expected a value strictly between 0 and 1, got {self.init_opacity!r}")
        return self


def splat_student_config(teacher_cfg: RunConfig, scfg: SplatDistillConfig, steps: int | None, output: str) -> RunConfig:
    """The splat run's config: the teacher's data (eval reads its val/test split), field ``gaussians``
    whose options are the splat settings."""
    cfg = copy.deepcopy(teacher_cfg)
    cfg.field = FieldConfig(KIND, dataclasses.asdict(scfg))
    cfg.train.steps = steps or DEFAULT_STEPS
    cfg.train.time_budget = None
    cfg.output = output
    return cfg


def views_at(cameras: Cameras, resolution: int) -> Cameras:
    """``cameras`` resized so their longest side is ``resolution`` (never enlarged)."""
    w, h = int(cameras.width[0]), int(cameras.height[0])
    scale = min(1.0, resolution / max(w, h))
    return cameras.resized(max(1, round(w * scale)), max(1, round(h * scale)))


def scene_extent(cameras: Cameras) -> float:
    """3DGS's scene size: 1.1 x the largest distance of a training camera from their mean position."""
    origins = cameras.c2w[:, :, 3].double()
    return 1.1 * float((origins - origins.mean(0)).norm(dim=-1).max().clamp_min(1e-6))


def initial_gaussians(teacher: SceneModel, scfg: SplatDistillConfig, seed: int) -> GaussianScene:
    """Round Gaussians on the teacher's point cloud (see the module docstring)."""
    cams = teacher.info.cameras
    downscale = max(int(cams.width[0]), int(cams.height[0])) / scfg.resolution
    points, colours = export_pointcloud(teacher, PointCloudConfig(views=scfg.init_views, downscale=max(downscale, 1.0),
                                                                   opacity_threshold=0.5, max_points=scfg.init_points,
                                                                   seed=seed))
    return GaussianScene.from_points(points, colours / 255.0, opacity=scfg.init_opacity, max_degree=scfg.max_degree)


@dataclass
class View:
    """One step's target: ``camera`` (one camera, CPU), ``target [H, W, 3]`` over ``background [3]``."""

    camera: Cameras
    target: Tensor
    background: Tensor
    source: str  # teacher | photo

    def __len__(self) -> int:
        return 1


class TeacherViews:
    """Batch source: teacher renders of training and new cameras (a pool refreshed as the run goes),
    then the photographs for the last ``photo_fraction`` of the run."""

    def __init__(self, teacher: SceneModel, scfg: SplatDistillConfig, background: str, device: torch.device,
                 photos: Scene | None = None):
        self.teacher, self.scfg, self.background, self.device = teacher, scfg, background, device
        info = teacher.info
        self.train_cams = views_at(info.cameras, scfg.resolution)
        self.poses = PoseSampler(info.cameras, info.aabb, None, PoseConfig(train_view_fraction=0.0))
        self.photos = photos
        self.photo_cams = None if photos is None else views_at(photos.cameras, scfg.resolution)
        self.pool: list[View] = []
        self.calls = 0

    def _background(self) -> Tensor:
        if self.background == "random":  # a colour per view: the splats learn where they are transparent
            return torch.rand(3, device=self.teacher.background.device)  # where the teacher renders it
        return self.teacher.background.clone()

    def teacher_view(self) -> View:
        """A fresh teacher render of a training camera or (``novel_fraction`` of the time) a new one."""
        if float(torch.rand(())) < self.scfg.novel_fraction:
            cams, _ = self.poses.draw(1)
            camera = views_at(cams, self.scfg.resolution)
        else:
            camera = self.train_cams[int(torch.randint(len(self.train_cams), ()))]
        bg = self._background()
        target = self.teacher.render_camera(camera, 0, outputs=("rgb",), background=bg)["rgb"]
        return View(camera, target.to(self.device), bg, "teacher")

    def photo_view(self) -> View:
        i = int(torch.randint(len(self.photos), ()))
        camera = self.photo_cams[i]
        h, w = int(camera.height[0]), int(camera.width[0])
        image = F.interpolate(self.photos.image(i).permute(2, 0, 1)[None], size=(h, w), mode="area")[0].permute(1, 2, 0)
        bg = self._background()
        return View(camera, composite_background(image, bg.to(image.device)).to(self.device), bg, "photo")

    def stage(self, progress: float) -> str:
        """Where the views come from at ``progress`` (share of the run done): ``teacher views`` or ``photographs``."""
        if self.photos is not None and progress >= 1 - self.scfg.photo_fraction:
            return "photographs"
        return "teacher views"

    def next(self, n: int, progress: float = 0.0) -> View:
        if self.stage(progress) == "photographs":
            return self.photo_view()
        if not self.pool or self.calls % self.scfg.new_view_every == 0:
            self.pool.append(self.teacher_view())
            del self.pool[:-self.scfg.pool_size]  # the oldest go
        self.calls += 1
        return self.pool[int(torch.randint(len(self.pool), ()))]

    def observe(self, batch: View, errors: Tensor) -> None:
        pass  # views are drawn uniformly


class SplatObjective:
    """3DGS's photometric loss of the splats' render of a view against its target."""

    def __init__(self, model: SplatModel, densifier: Densifier, ssim_weight: float):
        self.model, self.densifier, self.ssim_weight = model, densifier, ssim_weight

    def param_groups(self, lr: float) -> list[dict]:
        return []

    def __call__(self, view: View, step: int) -> StepResult:
        out = self.model.render(view.camera, 0, view.background.to(self.model.device))
        self.densifier.record(out)  # its screen-space gradient, read before the next step
        l1 = (out.rgb - view.target).abs().mean()
        loss = l1
        if self.ssim_weight > 0:
            loss = (1 - self.ssim_weight) * l1 + self.ssim_weight * (1 - ssim_tensor(out.rgb, view.target))
        mse = (out.rgb.detach() - view.target).square().mean()
        return StepResult(loss, {"loss": loss.detach(), "psnr": psnr_of(mse), "gaussians": len(self.model.scene)})


def load_photos(cfg: RunConfig, log: Callable[[str], None]) -> Scene | None:
    """The run's training images, or None (said once) when its dataset is not here."""
    try:
        return load_data(cfg.data, "train")
    except NeuralFieldsError as exc:
        log(f"no photographs for the last stage ({exc}); the teacher's renders remain the target")
        return None


class Pace:
    """The step that a run's schedules (densification, SH degree) are at: ``completed x steps`` of
    the loop, so a time-budgeted run goes through the whole cadence however many steps it gets;
    the loop's own step until the loop is bound."""

    def __init__(self, steps: int):
        self.steps = steps
        self.loop: TrainLoop | None = None

    def __call__(self, step: int) -> int:
        return step if self.loop is None else int(self.loop.completed * self.steps)


def splat_distill_trainer(cfg: RunConfig, teacher: SceneModel, scfg: SplatDistillConfig, val_scene: Scene | None,
                          run_dir: str | Path | None, resume: bool = False, progress: bool = True,
                          log: Callable[[str], None] = print, teacher_dir: str | Path | None = None,
                          device: torch.device | str | None = None, photos: Scene | None = None) -> TrainLoop:
    """The training loop that distils ``teacher`` into Gaussians; writes a splat run folder
    (:mod:`neuralfields.splats.model`). ``photos``: the training images for the last stage."""
    scfg.validate()
    info = teacher.info
    if info.dynamic:
        raise NeuralFieldsError("--student gaussians: the teacher's scene is dynamic, and splats are static")
    device = teacher.device if device is None else torch.device(device)
    t = cfg.train
    seed_everything(t.seed)
    scene = initial_gaussians(teacher, scfg, t.seed).to(device)
    extent = scene_extent(info.cameras)
    densifier = Densifier(scene, scfg.densify_config(t.steps), extent)
    sh_every = max(1, round(scfg.sh_every * t.steps))
    pace = Pace(t.steps)

    def raise_degree(step: int) -> None:
        while int(scene.active_degree) < min(step // sh_every, scene.max_degree):
            scene.raise_degree()

    model = SplatModel(scene, info, cfg, extent, hooks=[lambda step: densifier.update(pace(step)),
                                                        lambda step: raise_degree(pace(step))])
    source = TeacherViews(teacher, scfg, cfg.data.background, device, photos)
    objective = SplatObjective(model, densifier, scfg.ssim_weight)
    initial = len(scene)
    validate = None
    if val_scene is not None:
        validate = lambda: score_model(model, val_scene, spread_indices(len(val_scene), t.eval_images))  # noqa: E731

    def summarize(summary: dict) -> dict:
        summary.update(teacher_fidelity(model, teacher, val_scene, t.eval_images))
        summary.update(teacher=None if teacher_dir is None else str(teacher_dir), teacher_field=teacher.cfg.field.name,
                       gaussians=len(scene), initial_gaussians=initial)
        return summary

    loop_cfg = LoopConfig(t.steps, scfg.lr, StepDecay(t.steps, 0, [0.6, 0.85], 0.3, t.time_budget), BatchSize(1),
                          time_budget=t.time_budget, eval_every=t.eval_every, checkpoint_every=t.checkpoint_every,
                          seed=t.seed, desc="splats", record=cfg.to_dict())
    run = None if run_dir is None else RunFolder(run_dir, t.keep_checkpoints)
    loop = make_loop(loop_cfg, model, source, objective, run, validate=validate, summarize=summarize,
                     parts={"densify": Part(densifier, kind="splat distillation")}, progress=progress, log=log)
    densifier.bind(loop.optimizer)  # Adam's moments follow the Gaussians as they are added and removed
    pace.loop = loop
    if resume and run is not None:
        loop.resume()
    if run is not None and loop.main:
        run.write_config(cfg.to_dict())
        write_json_atomic(run.path / "distill.json", {
            "teacher": None if teacher_dir is None else str(teacher_dir), "teacher_field": teacher.cfg.field.name,
            "student_field": KIND, "initial_gaussians": initial, "extent": extent,
            "photographs": photos is not None, "settings": dataclasses.asdict(scfg)})
    return loop
