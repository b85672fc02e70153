"""Progressive Volume Distillation: train any field to reproduce any trained field.

One step (see docs/distill.md):

1. cameras are drawn around the scene from the teacher's training-pose distribution
   (:mod:`.poses`), plus, with active learning, jittered hard poses and replayed hard rays
   (:mod:`.active`);
2. the *teacher's* occupancy grid and density place the samples (ray marching, then dropping
   samples hidden behind the teacher's surfaces); these packed samples are shared: teacher and
   student are evaluated at exactly the same points, so per-sample losses compare like with like;
3. the teacher (no gradients) gives raw density, geometry features, colour and composited pixels;
   the student gives the same quantities with gradients;
4. the stage decides the loss (:class:`StageSchedule`): features first (the first part of each
   field, PVD's "shallower" volume), then density and colour per sample, then rendered pixels.

The student is a normal run: :class:`DistillTrainer` subclasses the trainer, so progress bar,
periodic evaluation on the val split, metrics, atomic checkpoints (in the format
:func:`~neuralfields.model.load_model` reads) and ``--resume`` are the trainer's. The teacher's
grid stays fixed (no occupancy updates); the student keeps a copy of it (:mod:`.inherit`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..config import RunConfig
from ..data import load_data
from ..data.scene import Scene, composite_background
from ..errors import NeuralFieldsError
from ..model import SceneModel
from ..render.compositing import composite
from ..render.marching import PackedSamples
from ..train.metrics import mse_to_psnr, psnr
from ..train.trainer import Trainer
from .active import HardPosePool, HardRayPool, important_samples, per_camera_psnr
from .config import DistillConfig, StageWeights
from .inherit import inherit_color_head, inherited_parameters, transfer_grid
from .losses import build_projection, color_loss, default_density_clamp, density_loss, feature_loss, log_density_fn, rgb_loss
from .poses import PoseSampler, cat_cameras, rays_from_cameras
from .teacher import camera_scene

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
class SharedSamples:
    """Packed samples of ``n_rays`` rays and what the teacher says about them.

    Attributes:
        samples: the packed intervals (teacher's grid, pruned by the teacher's density).
        x: ``[S, 3]`` normalised positions; ``dirs``: ``[S, 3]`` unit directions;
        times: ``[S, 1]`` or None.
        raw, geo, rgb, weights: teacher raw density ``[S]``, features ``[S, F]``, colour ``[S, 3]``
            and rendering weights ``[S]``; pixels: ``[R, 3]`` teacher's composited colour.
        background: ``[R, 3]`` background both sides composite over.
    """

    samples: PackedSamples
    x: Tensor
    dirs: Tensor
    times: Tensor | None
    raw: Tensor
    geo: Tensor
    rgb: Tensor
    weights: Tensor
    pixels: Tensor
    background: Tensor


@torch.no_grad()
def teacher_pass(teacher: SceneModel, origins: Tensor, dirs: Tensor, times: Tensor | None,
                 background: Tensor) -> SharedSamples:
    """March rays ``[R, 3]`` through the teacher's grid and evaluate the teacher on the samples."""
    renderer, field = teacher.renderer, teacher.field
    samples = renderer.sample(field, origins, dirs, times, jitter=True)
    idx = samples.ray_indices
    x = renderer.normalize(samples.midpoints(origins, dirs))
    t = None if times is None else times[idx, None]
    d = dirs[idx]
    raw, geo = field.raw_density(x, t)
    rgb = field.color(x, d, geo, t)
    out = composite(samples.t_starts, samples.t_ends, field.density_activation(raw), rgb, idx, origins.shape[0], background)
    return SharedSamples(samples, x, d, t, raw, geo, rgb, out["weights"], out["rgb"], background)


class DistillTrainer(Trainer):
    """Trains the field of ``cfg`` to reproduce ``teacher``; writes a normal run folder.

    Args:
        cfg: the student's run config (see :func:`~neuralfields.distill.teacher.student_config`).
        teacher: the loaded teacher model (its grid samples both fields).
        dcfg: distillation settings.
        val_scene: ground-truth split for periodic evaluation (None: no ground-truth eval).
        teacher_dir: recorded in ``distill.json`` and the checkpoints.
    """

    def __init__(self, cfg: RunConfig, teacher: SceneModel, dcfg: DistillConfig | None = None,
                 val_scene: Scene | None = None, run_dir: str | Path | None = None, resume: bool = False,
                 progress: bool = True, log: Callable[[str], None] = print, teacher_dir: str | Path | None = None):
        self.dcfg = (dcfg or DistillConfig()).validate()
        self.teacher, self.teacher_dir = teacher, None if teacher_dir is None else str(teacher_dir)
        # The trainer seeds the generators, builds the student and writes config.json; resuming
        # waits until the distillation state (projection, pools) exists.
        super().__init__(cfg, camera_scene(teacher.info), val_scene, run_dir, resume=False, progress=progress, log=log)
        student = self.model.field
        self.grid_transfer = transfer_grid(teacher.grid, self.model.grid)
        self.inherited = inherit_color_head(teacher.field, student) if self.dcfg.inherit_color_head else []
        frozen = set()
        if self.inherited and self.dcfg.freeze_inherited:
            for p in inherited_parameters(student, self.inherited):
                p.requires_grad_(False)
                frozen.add(id(p))
        self.projection = build_projection(self.dcfg.projection, student.geo_dim, teacher.field.geo_dim)
        groups = []
        for g in student.param_groups(cfg.train.lr, cfg.train.weight_decay):
            params = [p for p in g["params"] if id(p) not in frozen]
            if params:
                groups.append({**g, "params": params})
        if not self.projection.is_identity:
            groups.append({"params": list(self.projection.parameters()), "lr": cfg.train.lr, "weight_decay": 0.0})
        self.optimizer = torch.optim.Adam(groups, eps=1e-15)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]

        self.schedule = StageSchedule(self.dcfg, cfg.train.steps)
        clamp = self.dcfg.density_clamp or default_density_clamp(teacher.renderer.step_size)
        self.density_clamp = (float(clamp[0]), float(clamp[1]))
        self.teacher_log_density = log_density_fn(teacher.field)
        self.student_log_density = log_density_fn(student)
        info = teacher.info
        self.poses = PoseSampler(info.cameras, info.aabb, info.times if info.dynamic else None, self.dcfg.poses)
        active = self.dcfg.active
        self.pose_pool = HardPosePool(active.pose_pool_size) if active.enabled else None
        self.ray_pool = HardRayPool(active.ray_pool_size) if active.enabled else None
        if resume and self.run_dir is not None:
            self._resume()
        if self.run_dir is not None:
            (self.run_dir / "distill.json").write_text(json.dumps(self.describe(), indent=2))

    # ----------------------------------------------------------------------------------- state
    def describe(self) -> dict:
        """What the run inherited and how it distils (written to ``distill.json``)."""
        s2, s3 = self.schedule.boundaries()
        return {"teacher": self.teacher_dir, "teacher_field": self.teacher.cfg.field.name,
                "student_field": self.cfg.field.name, "stage_starts": {"features": 0, "density+colour": s2, "pixels": s3},
                "density_clamp": list(self.density_clamp), "pose_sampler": self.poses.kind,
                "grid": self.grid_transfer, "inherited": self.inherited,
                "projection": "identity" if self.projection.is_identity else "linear", "settings": self.dcfg.to_dict()}

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["distill"] = {"teacher": self.teacher_dir, "settings": self.dcfg.to_dict(),
                            "projection": self.projection.state_dict(),
                            "pose_pool": None if self.pose_pool is None else self.pose_pool.state_dict(),
                            "ray_pool": None if self.ray_pool is None else self.ray_pool.state_dict()}
        return state

    def load_state(self, path: Path, state: dict) -> None:
        extra = state.get("distill")
        if extra is None:
            raise NeuralFieldsError(f"{path}: not a distillation checkpoint; cannot resume it as one")
        super().load_state(path, state)
        self.projection.load_state_dict(extra["projection"])
        if self.pose_pool is not None and extra.get("pose_pool") is not None:
            self.pose_pool.load_state_dict(extra["pose_pool"])
        if self.ray_pool is not None and extra.get("ray_pool") is not None:
            self.ray_pool.load_state_dict(extra["ray_pool"])

    def rebuild_schedule(self) -> None:
        """Recompute the stage boundaries after ``train.steps`` changed (benchmarks budget steps by time)."""
        self.schedule = StageSchedule(self.dcfg, self.cfg.train.steps)

    def update_grid(self) -> None:
        """No occupancy updates: the teacher's grid decides where both fields are sampled."""

    # ------------------------------------------------------------------------------- batches
    def draw_batch(self, n_rays: int) -> dict:
        """Rays of fresh (and, with active learning, hard) poses plus replayed hard rays."""
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
            replay = self.ray_pool.pop(int(round(n_rays * self.dcfg.active.ray_replay_fraction)))
        n_new = n_rays - (0 if replay is None else replay["origins"].shape[0])
        batch = rays_from_cameras(cameras, cam_times, n_new)
        if replay is not None:
            batch["origins"] = torch.cat([batch["origins"], replay["origins"]])
            batch["dirs"] = torch.cat([batch["dirs"], replay["dirs"]])
            batch["camera"] = torch.cat([batch["camera"], torch.full((replay["origins"].shape[0],), -1)])
            if batch["times"] is not None:
                batch["times"] = torch.cat([batch["times"], replay["times"]])
        batch["background"] = self.batch_background(batch["origins"].shape[0])
        batch["cameras"], batch["camera_times"] = cameras, cam_times
        return batch

    # ------------------------------------------------------------------------------- training
    def losses(self, shared: SharedSamples, weights: StageWeights) -> tuple[Tensor, dict[str, float], Tensor]:
        """Weighted loss of one stage, its terms, and the student's composited pixels ``[R, 3]``."""
        student = self.model.field
        n_rays = shared.pixels.shape[0]
        raw, geo = student.raw_density(shared.x, shared.times)
        rgb = student.color(shared.x, shared.dirs, geo, shared.times)
        s = shared.samples
        pixels = composite(s.t_starts, s.t_ends, student.density_activation(raw), rgb, s.ray_indices, n_rays,
                           shared.background)["rgb"]
        mask = None
        if self.dcfg.active.enabled and self.dcfg.active.sample_weight_mass < 1.0:
            mask = important_samples(shared.weights, self.dcfg.active.sample_weight_mass)
        terms: dict[str, Tensor] = {}
        if weights.feature > 0:
            terms["feature"] = feature_loss(self.projection(geo), shared.geo, mask)
        if weights.density > 0:
            terms["density"] = density_loss(self.student_log_density(raw), self.teacher_log_density(shared.raw),
                                            *self.density_clamp)
        if weights.color > 0:
            terms["color"] = color_loss(rgb, shared.rgb, mask)
        if weights.rgb > 0:
            terms["rgb"] = rgb_loss(pixels, shared.pixels)
        # Start from a constant: a zero-weighted graph term would hand unused modules zero gradients,
        # which weight decay and Adam's moments turn into updates.
        total = sum((getattr(weights, k) * v for k, v in terms.items()), torch.zeros(()))
        return total, {f"loss_{k}": float(v.detach()) for k, v in terms.items()}, pixels

    def train_step(self) -> dict[str, float]:
        self.model.field.train()
        self.projection.train()
        self.set_learning_rates()
        stage = self.schedule.stage(self.step)
        batch = self.draw_batch(self.n_rays)
        shared = teacher_pass(self.teacher, batch["origins"], batch["dirs"], batch["times"], batch["background"])
        n_samples = len(shared.samples)
        total, terms, pixels = self.losses(shared, self.schedule.weights[stage])
        self.optimizer.zero_grad(set_to_none=True)
        if n_samples > 0 and total.requires_grad:
            total.backward()
            self.optimizer.step()
        errors = ((pixels.detach() - shared.pixels) ** 2).mean(-1)  # [R] student vs teacher
        if self.pose_pool is not None:
            k = len(batch["cameras"])
            self.pose_pool.add(batch["cameras"], batch["camera_times"], per_camera_psnr(errors, batch["camera"], k))
            self.ray_pool.add(batch["origins"], batch["dirs"], batch["times"], errors, self.dcfg.active.hard_ray_fraction)
        self.adapt_ray_count(n_samples)
        self.step += 1
        return {"loss": float(total.detach()), "psnr": mse_to_psnr(errors.mean()), "n_rays": batch["origins"].shape[0],
                "n_samples": n_samples, "stage": stage, **terms}

    # ------------------------------------------------------------------------------- results
    @torch.no_grad()
    def teacher_fidelity(self, n_images: int | None = None) -> dict:
        """Student-vs-teacher PSNR of full renders (no ground truth needed), and the teacher's own
        val PSNR when the val split is loaded. Uses val cameras if loaded, else training cameras."""
        scene = self.val_scene
        cameras = scene.cameras if scene is not None else self.teacher.info.cameras
        times = (scene.times if scene is not None else self.teacher.info.times) if self.teacher.info.dynamic else None
        n = len(cameras) if n_images is None else min(n_images, len(cameras))
        indices = sorted({int(round(k)) for k in np.linspace(0, len(cameras) - 1, n)}) if n else []
        vs_teacher, teacher_gt = [], []
        for i in indices:
            time = None if times is None else float(times[i])
            ours = self.model.render_camera(cameras, i, time)["rgb"]
            theirs = self.teacher.render_camera(cameras, i, time)["rgb"]
            vs_teacher.append(psnr(ours, theirs))
            if scene is not None:
                teacher_gt.append(psnr(theirs, composite_background(scene.image(i), self.model.background)))
        out = {"teacher_psnr": float(np.mean(vs_teacher)) if vs_teacher else float("nan"),
               "fidelity_images": len(indices), "fidelity_split": "val" if scene is not None else "train"}
        if teacher_gt:
            out["teacher_val_psnr"] = float(np.mean(teacher_gt))
        return out

    def fit(self) -> dict:
        """Distil to ``train.steps``; the summary adds student-vs-teacher PSNR and what was inherited."""
        summary = super().fit()
        summary.update(self.teacher_fidelity(self.cfg.train.eval_images))
        summary.update(teacher=self.teacher_dir, teacher_field=self.teacher.cfg.field.name,
                       inherited=self.inherited, stage_starts=list(self.schedule.boundaries()))
        if self.run_dir is not None:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


def load_val_scene(cfg: RunConfig, split: str = "val") -> Scene | None:
    """The ground-truth split for evaluation, or None (with a warning) when the dataset is unavailable:
    distillation itself needs only the teacher."""
    try:
        return load_data(cfg.data, split)
    except NeuralFieldsError as exc:
        warnings.warn(f"no ground-truth evaluation ({exc})")
        return None
