"""Progressive Volume Distillation: train any field to reproduce any trained field.

Distillation is the training loop with a batch source and an objective of its own (see
docs/distill.md):

1. :class:`TeacherCameras` draws cameras around the scene from the teacher's training-pose
   distribution (:mod:`.poses`), plus, with active learning, jittered hard poses and replayed
   hard rays (:mod:`.active`), and hands the loop their rays;
2. :class:`DistillObjective` lets the *teacher* render the rays (its sampler places the
   samples); the student shades exactly these samples through the one shading path, so
   per-sample losses compare like with like;
3. the stage decides the loss (:class:`StageSchedule`): features first (the first part of each
   field, PVD's "shallower" volume), then density and colour per sample, then rendered pixels.

The student is a normal run: progress bar, periodic validation on the val split, metrics, atomic
checkpoints (in the format :func:`~neuralfields.scene_model.load_model` reads) and ``--resume`` are the
loop's. The teacher's grid is never updated; the student keeps a copy of it (:mod:`.inherit`).

With several ranks (torchrun) the loop averages the student's gradients and gives each rank its
own random stream, so each rank draws its own cameras and rays; the grids need no syncing.
Active-learning pools are per rank (each keeps its own hard poses and rays); a checkpoint holds
rank 0's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from ..cameras import Cameras
from ..config import RunConfig, TrainConfig
from ..data import load_data
from ..data.scene import Scene, batch_background, composite_background
from ..errors import NeuralFieldsError
from ..loop import Part, StepResult, TrainLoop, make_loop, scene_loop_config, seed_everything
from ..render.rays import RayBatch
from ..render.shading import RenderOutputs
from ..scene_model import SceneModel, build_model
from ..scoring import score_model, spread_indices
from ..run.folder import RunFolder, write_json_atomic
from ..run.metrics import psnr, psnr_of
from ..selection import ErrorReplay, Selection, SelectionConfig
from .active import HardPosePool, important_samples, per_camera_psnr
from .config import DistillConfig, StageWeights
from .inherit import inherit_color_head, inherited_parameters, transfer_grid
from .losses import build_projection, color_loss, default_density_clamp, density_loss, feature_loss, log_density_fn, rgb_loss
from .poses import PoseSampler, cat_cameras, rays_from_cameras

STAGE_NAMES = {1: "features", 2: "density+colour", 3: "pixels"}


class StageSchedule:
    """Stage of each step: 1 (features) for ``feature_steps``, 2 (density, colour) for
    ``field_steps``, then 3 (rendered pixels) to the end."""

    def __init__(self, cfg: DistillConfig, steps: int):
        self.feature_steps, self.field_steps = cfg.stage_lengths(steps)
        self.weights = {1: cfg.feature_stage, 2: cfg.field_stage, 3: cfg.render_stage}

    def stage(self, step: int) -> int:
        if step < self.feature_steps:
            return 1
        if step < self.feature_steps + self.field_steps:
            return 2
        return 3

    def boundaries(self) -> tuple[int, int]:
        """First step of stage 2 and of stage 3."""
        return self.feature_steps, self.feature_steps + self.field_steps


@dataclass
class CameraBatch:
    """Rays of one distillation step and the cameras they come from.

    Attributes:
        rays: the rays (background set); camera: ``[R]`` index into ``cameras`` (-1: replayed ray).
        cameras, camera_times: the step's cameras and their times (dynamic scenes).
    """

    rays: RayBatch
    camera: Tensor
    cameras: Cameras
    camera_times: Tensor | None

    def __len__(self) -> int:
        return len(self.rays)


class TeacherCameras:
    """Batch source: rays of fresh (and, with active learning, hard) poses plus replayed hard rays."""

    def __init__(self, teacher: SceneModel, dcfg: DistillConfig, background: str, device: torch.device,
                 selection: Selection | None = None):
        info = teacher.info
        self.dcfg, self.background, self.device = dcfg, background, device
        self.poses = PoseSampler(info.cameras, info.aabb, info.times if info.dynamic else None, dcfg.poses)
        active = dcfg.active
        self.pose_pool = HardPosePool(active.pose_pool_size) if active.enabled else None
        self.selection = selection or Selection()
        self.ray_pool = ErrorReplay(active.ray_pool_size, active.hard_ray_fraction) if self.selection.active else None

    def next(self, n: int, progress: float = 0.0) -> CameraBatch:
        k = self.dcfg.poses.cameras_per_step
        parts, times = [], []
        if self.pose_pool is not None:
            hard = self.pose_pool.pop_worst(int(round(k * self.dcfg.active.hard_pose_fraction)))
            if hard is not None:
                a = self.dcfg.active
                parts.append(self.poses.jitter(hard[0], a.pose_jitter_deg, a.pose_jitter_radius))
                times.append(hard[1])
        n_fresh = k - sum(len(p) for p in parts)
        if n_fresh > 0:
            cams, t = self.poses.draw(n_fresh)
            parts.append(cams)
            times.append(t)
        cameras = cat_cameras(parts)
        cam_times = None if times[0] is None else torch.cat(times)
        replay = None
        if self.ray_pool is not None:
            replay = self.ray_pool.take(self.selection, self.selection.chosen_count(n, progress))
        n_new = n - (0 if replay is None else replay["origins"].shape[0])
        rays, camera = rays_from_cameras(cameras.to(self.device), cam_times, n_new)
        if replay is not None:
            rays = RayBatch.cat([rays, RayBatch(replay["origins"], replay["dirs"], replay.get("times"))])
            camera = torch.cat([camera, torch.full((replay["origins"].shape[0],), -1, device=camera.device)])
        rays.background = batch_background(self.background, len(rays), self.device)
        return CameraBatch(rays, camera, cameras, cam_times)

    def observe(self, batch: CameraBatch, errors: Tensor) -> None:
        """Score the step's poses (active learning) and offer its rays to the replay."""
        if self.pose_pool is not None:
            k = len(batch.cameras)
            self.pose_pool.add(batch.cameras, batch.camera_times, per_camera_psnr(errors, batch.camera, k).cpu())
        if self.ray_pool is not None:
            rays = batch.rays
            self.ray_pool.offer({"origins": rays.origins, "dirs": rays.dirs, "times": rays.times}, errors)


class DistillObjective:
    """Staged PVD losses of the student against the teacher on the teacher's samples."""

    def __init__(self, teacher: SceneModel, student: SceneModel, dcfg: DistillConfig, steps: int):
        self.teacher, self.student, self.dcfg = teacher, student, dcfg
        self.projection = build_projection(dcfg.projection, student.field.geo_dim, teacher.field.geo_dim)
        self.projection.to(student.device)
        self.schedule = StageSchedule(dcfg, steps)
        clamp = dcfg.density_clamp or default_density_clamp(teacher.sampler.step_size)
        self.density_clamp = (float(clamp[0]), float(clamp[1]))
        self.teacher_log_density = log_density_fn(teacher.field)
        self.student_log_density = log_density_fn(student.field)

    @torch.no_grad()
    def teacher_pass(self, rays: RayBatch) -> RenderOutputs:
        """The teacher's jittered samples of ``rays`` and its values there."""
        return self.teacher.render_rays(rays, training=True)

    def param_groups(self, lr: float) -> list[dict]:
        """The projection between the two fields' features, when it is learnt."""
        if self.projection.is_identity:
            return []
        return [{"params": list(self.projection.parameters()), "lr": lr, "weight_decay": 0.0}]

    def losses(self, theirs: RenderOutputs, ours: RenderOutputs, weights: StageWeights) -> tuple[Tensor, dict[str, float]]:
        """Weighted loss of one stage and its terms."""
        mask = None
        if self.dcfg.active.enabled and self.dcfg.active.sample_weight_mass < 1.0:
            mask = important_samples(theirs.weights, self.dcfg.active.sample_weight_mass)
        s, t = ours.per_sample, theirs.per_sample
        terms: dict[str, Tensor] = {}
        if weights.feature > 0:
            terms["feature"] = feature_loss(self.projection(s.geo), t.geo, mask)
        if weights.density > 0:
            terms["density"] = density_loss(self.student_log_density(s.raw), self.teacher_log_density(t.raw),
                                            *self.density_clamp)
        if weights.color > 0:
            terms["color"] = color_loss(s.rgb, t.rgb, mask)
        if weights.rgb > 0:
            terms["rgb"] = rgb_loss(ours.rgb, theirs.rgb)
        # Start from a constant: a zero-weighted graph term would hand unused modules zero gradients,
        # which weight decay and Adam's moments turn into updates.
        total = sum((getattr(weights, k) * v for k, v in terms.items()), torch.zeros((), device=ours.rgb.device))
        return total, {f"loss_{k}": v.detach() for k, v in terms.items()}

    def __call__(self, batch: CameraBatch, step: int) -> StepResult:
        self.student.field.train()
        self.projection.train()
        stage = self.schedule.stage(step)
        theirs = self.teacher_pass(batch.rays)
        ours = self.student.shade(theirs.samples, batch.rays)
        total, terms = self.losses(theirs, ours, self.schedule.weights[stage])
        errors = ((ours.rgb.detach() - theirs.rgb) ** 2).mean(-1)  # [R] student vs teacher
        return StepResult(total, {"loss": total.detach(), "psnr": psnr_of(errors.mean()), "stage": stage,
                                  **terms}, theirs.n_samples, errors)


class DistillState:
    """What a distillation checkpoint adds to a training one (its ``distill`` entry)."""

    def __init__(self, objective: DistillObjective, source: TeacherCameras, teacher_dir: str | None,
                 grid_transfer: str = "", inherited: list[str] | None = None):
        self.objective, self.source, self.teacher_dir = objective, source, teacher_dir
        self.grid_transfer, self.inherited = grid_transfer, list(inherited or [])

    def state_dict(self) -> dict:
        src = self.source
        return {"teacher": self.teacher_dir, "settings": self.objective.dcfg.to_dict(),
                "projection": self.objective.projection.state_dict(),
                "pose_pool": None if src.pose_pool is None else src.pose_pool.state_dict(),
                "ray_pool": None if src.ray_pool is None else src.ray_pool.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.objective.projection.load_state_dict(state["projection"])
        if self.source.pose_pool is not None and state.get("pose_pool") is not None:
            self.source.pose_pool.load_state_dict(state["pose_pool"])
        if self.source.ray_pool is not None and state.get("ray_pool") is not None:
            self.source.ray_pool.load_state_dict(state["ray_pool"])


@torch.no_grad()
def teacher_fidelity(student: SceneModel, teacher: SceneModel, scene: Scene | None, n_images: int | None = None) -> dict:
    """Student-vs-teacher PSNR of full renders (no ground truth needed), and the teacher's own
    val PSNR when the val split is loaded. Uses val cameras if loaded, else training cameras."""
    cameras = scene.cameras if scene is not None else teacher.info.cameras
    times = (scene.times if scene is not None else teacher.info.times) if teacher.info.dynamic else None
    indices = spread_indices(len(cameras), n_images)
    vs_teacher, teacher_gt = [], []
    for i in indices:
        time = None if times is None else float(times[i])
        ours = student.render_camera(cameras, i, time)["rgb"]
        theirs = teacher.render_camera(cameras, i, time)["rgb"]
        vs_teacher.append(psnr(ours, theirs))
        if scene is not None:
            teacher_gt.append(psnr(theirs, composite_background(scene.image(i), student.background)))
    out = {"teacher_psnr": sum(vs_teacher) / len(vs_teacher) if vs_teacher else float("nan"),
           "fidelity_images": len(indices), "fidelity_split": "val" if scene is not None else "train"}
    if teacher_gt:
        out["teacher_val_psnr"] = sum(teacher_gt) / len(teacher_gt)
    return out


def ray_selection(t: TrainConfig, dcfg: DistillConfig) -> Selection:
    """Which rays a distillation batch replays: ``train.selection`` when set; with PVD-AL's active
    learning and no selection set, PVD-AL's hard rays: a constant ``active.ray_replay_fraction``
    of each batch taken from the largest-error rays seen before (INT over a replay)."""
    if t.selection != "uniform" or not dcfg.active.enabled:
        return Selection(t.selection, t.select.validate("train.select"))
    share = dcfg.active.ray_replay_fraction
    return Selection("int", SelectionConfig(start=share, end=share))


def distill_trainer(cfg: RunConfig, teacher: SceneModel, dcfg: DistillConfig | None = None,
                    val_scene: Scene | None = None, run_dir: str | Path | None = None, resume: bool = False,
                    progress: bool = True, log: Callable[[str], None] = print, teacher_dir: str | Path | None = None,
                    device: torch.device | str | None = None) -> TrainLoop:
    """The training loop that distils ``teacher`` into the field of ``cfg``; writes a normal run folder.

    Args:
        cfg: the student's run config (see :func:`~neuralfields.distill.teacher.student_config`).
        teacher: the loaded teacher model (its sampler places the samples of both fields).
        dcfg: distillation settings; val_scene: ground truth for periodic evaluation (or None).
        teacher_dir: recorded in ``distill.json`` and the checkpoints.
        device: the student's device (default: the teacher's).
    """
    dcfg = (dcfg or DistillConfig()).validate()
    device = teacher.device if device is None else torch.device(device)
    t = cfg.train
    seed_everything(t.seed)
    student = build_model(cfg, teacher.info, device)
    grids = teacher.sampler.grid, student.sampler.grid
    grid_transfer = transfer_grid(*grids) if None not in grids else "none (a sampler without a grid)"
    inherited = inherit_color_head(teacher.field, student.field) if dcfg.inherit_color_head else []
    if inherited and dcfg.freeze_inherited:
        for p in inherited_parameters(student.field, inherited):
            p.requires_grad_(False)  # the loop's optimiser leaves frozen parameters out
    # The student learns its field only: its rays come from no training image, and its sampler
    # takes the teacher's samples (a proposal student's networks would get no gradient anyway).
    for part in (student.appearance, student.sampler):
        if part is not None:
            part.requires_grad_(False)
    objective = DistillObjective(teacher, student, dcfg, t.steps)
    source = TeacherCameras(teacher, dcfg, cfg.data.background, device, ray_selection(t, dcfg))
    teacher_dir = None if teacher_dir is None else str(teacher_dir)

    def summarize(summary: dict) -> dict:
        summary.update(teacher_fidelity(student, teacher, val_scene, t.eval_images))
        summary.update(teacher=teacher_dir, teacher_field=teacher.cfg.field.name, inherited=inherited,
                       stage_starts=list(objective.schedule.boundaries()))
        return summary

    validate = None
    if val_scene is not None:
        validate = lambda: score_model(student, val_scene, spread_indices(len(val_scene), t.eval_images))  # noqa: E731
    run = None if run_dir is None else RunFolder(run_dir, t.keep_checkpoints)
    state = DistillState(objective, source, teacher_dir, grid_transfer, inherited)
    loop = make_loop(scene_loop_config(t, student.sampler.initial_samples_per_ray, "distill", cfg.to_dict()), student,
                     source, objective, run, validate=validate, summarize=summarize,
                     parts={"distill": Part(state, kind="distillation")},
                     hooks=[],  # the student keeps the teacher's grid: its own sampler learns nothing here
                     progress=progress, log=log)
    if resume and run is not None:
        loop.resume()
    if run is not None and loop.main:  # with several ranks, rank 0 writes the run folder
        run.write_config(cfg.to_dict())
        s2, s3 = objective.schedule.boundaries()
        write_json_atomic(run.path / "distill.json", {
            "teacher": teacher_dir, "teacher_field": teacher.cfg.field.name, "student_field": cfg.field.name,
            "stage_starts": {"features": 0, "density+colour": s2, "pixels": s3},
            "density_clamp": list(objective.density_clamp), "pose_sampler": source.poses.kind, "grid": grid_transfer,
            "inherited": inherited, "projection": "identity" if objective.projection.is_identity else "linear",
            "settings": dcfg.to_dict()})
    return loop


def set_steps(loop: TrainLoop, steps: int) -> None:
    """Change a loop's step budget (benchmarks size it by time): the lr schedule and, for a
    distillation, the stage boundaries follow."""
    loop.settings.steps = loop.schedule.steps = steps
    if isinstance(loop.objective, DistillObjective):
        loop.objective.schedule = StageSchedule(loop.objective.dcfg, steps)


def load_val_scene(cfg: RunConfig, split: str = "val") -> Scene | None:
    """The ground-truth split for evaluation, or None (with a warning) when the dataset is unavailable:
    distillation itself needs only the teacher."""
    try:
        return load_data(cfg.data, split)
    except NeuralFieldsError as exc:
        warnings.warn(f"no ground-truth evaluation ({exc})")
        return None
