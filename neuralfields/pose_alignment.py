"""Fitting one held-out view to a frozen model on half of its pixels: its pose, its appearance code.

Held-out poses come from the same COLMAP or tracking solve as the training poses, and training
refines those (:mod:`neuralfields.camera_refinement`); scoring a refined model on held-out views
at their given poses charges it for the solve's errors. NeRF-W's protocol fits what a held-out
view alone decides on one half of the image and scores the other half: here the **left half**
(pixel columns ``[0, W // 2)``) is fitted, the **right half** (``[W // 2, W)``) scored, so no
scored pixel is ever seen by the fit.

A view's pose correction is camera refinement's parameterisation for one camera
(:class:`~neuralfields.camera_refinement.CameraCorrections`): an axis-angle rotation of the ray
directions about the camera centre and a translation of the centre, both in world axes. With
appearance codes the view's code is fitted with it (starting from the mean code), as NeRF-W fits
the held-out appearance embedding. The field, sampler and codes table stay frozen.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor
from tqdm import tqdm

from .camera_refinement import CameraCorrections
from .cameras import Cameras
from .data.scene import Scene, composite_background
from .errors import NeuralFieldsError
from .render.rays import RayBatch


@dataclass
class PoseAlignmentConfig:
    """How a held-out view is fitted on its left half (each view costs ``steps`` forward and
    backward passes of ``rays`` rays).

    Attributes:
        steps: Adam steps per view.
        rays: random pixels of the left half per step (drawn with replacement).
        lr: the pose's learning rate at the first step (radians and scene units per step, Adam);
            it decays log-linearly to ``lr_end`` at the last, so that the pose settles.
        lr_end: the pose's learning rate at the last step.
        appearance_lr: the appearance code's learning rate (constant; models with codes).
        seed: the pixels of view ``i`` are drawn by a generator seeded ``seed + i`` (the same
            fit on every run, whichever views are scored).
    """

    steps: int = 200
    rays: int = 1024
    lr: float = 5e-3
    lr_end: float = 1e-4
    appearance_lr: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise NeuralFieldsError(f"pose alignment: steps must be 0 or more, got {self.steps}")
        if self.rays <= 0:
            raise NeuralFieldsError(f"pose alignment: rays must be positive, got {self.rays}")
        if not (self.lr > 0 and self.lr_end > 0 and self.appearance_lr > 0):
            raise NeuralFieldsError("pose alignment: learning rates must be positive")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ViewFit:
    """What was fitted to one view: ``delta [6]`` its pose correction (axis-angle rotation in
    radians, translation in scene units; None when the pose was not fitted) and ``code [C]`` its
    appearance code (None when not fitted)."""

    delta: Tensor | None
    code: Tensor | None

    @property
    def rotation_degrees(self) -> float:
        return 0.0 if self.delta is None else math.degrees(float(self.delta[:3].norm()))

    @property
    def translation(self) -> float:
        return 0.0 if self.delta is None else float(self.delta[3:].norm())


def fitting_half(width: int) -> int:
    """Pixel columns ``[0, fitting_half(W))`` are fitted and ``[fitting_half(W), W)`` scored."""
    return max(width // 2, 1)


def fit_view(model, scene: Scene, index: int, cfg: PoseAlignmentConfig, pose: bool = True,
             appearance: bool = True, generator: torch.Generator | None = None, progress: bool = False) -> ViewFit:
    """Fit view ``index`` of ``scene`` to ``model`` (a :class:`~neuralfields.scene_model.SceneModel`,
    left unchanged) on the left half of its image: its pose correction when ``pose``, its appearance
    code when ``appearance`` and the model has codes. Pixels come from ``generator`` (default: torch's
    global generator; it must live on the model's device)."""
    codes, device = model.appearance, model.device
    appearance = appearance and codes is not None
    if not (pose or appearance):
        return ViewFit(None, None)
    cameras = scene.cameras[index].to(device)
    image = composite_background(scene.image(index), model.background).to(device)  # [H, W, 3]
    h, w = image.shape[:2]
    time = None if scene.times is None else float(scene.times[index])
    background = model.background.to(device)
    groups, corrections, code = [], None, None
    if pose:
        corrections = CameraCorrections(1).to(device)
        groups.append({"params": [corrections.delta], "lr": cfg.lr})
    if appearance:
        code = codes.default_code().detach().clone().requires_grad_(True)
        groups.append({"params": [code], "lr": cfg.appearance_lr})
    optimizer = torch.optim.Adam(groups)
    decay = (cfg.lr_end / cfg.lr) ** (1.0 / max(cfg.steps - 1, 1))
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    model.field.eval()
    try:
        for step in tqdm(range(cfg.steps), desc=f"fitting view {index}", disable=not progress, leave=False):
            y = torch.randint(0, h, (cfg.rays,), device=device, generator=generator)
            x = torch.randint(0, fitting_half(w), (cfg.rays,), device=device, generator=generator)
            rays = RayBatch.from_pixels(cameras, 0, y * w + x, time, background=background)
            if corrections is not None:
                ids = torch.zeros(len(rays), dtype=torch.long, device=device)
                origins, dirs = corrections.apply(ids, rays.origins, rays.dirs)
                rays = replace(rays, origins=origins, dirs=dirs)
            if code is not None:
                codes.fix(code)
            out = model.render_rays(rays)
            loss = torch.nn.functional.mse_loss(out.rgb, image[y, x])
            optimizer.zero_grad()
            loss.backward()
            if step == 0 and corrections is not None and corrections.delta.grad is None:
                raise NeuralFieldsError("pose alignment: this model's renderer gives no gradient for the camera pose")
            optimizer.step()
            if corrections is not None:
                optimizer.param_groups[0]["lr"] *= decay
    finally:
        if codes is not None:
            codes.fix(None)
        for p in frozen:
            p.requires_grad_(True)
    return ViewFit(None if corrections is None else corrections.delta.detach()[0],
                   None if code is None else code.detach())


def align_view(model, scene: Scene, index: int, cfg: PoseAlignmentConfig, progress: bool = False) -> ViewFit:
    """NeRF-W's protocol with the pose: view ``index``'s pose correction (and appearance code, for
    models with codes) fitted on the left half of its image, pixels drawn from ``cfg.seed + index``."""
    generator = torch.Generator(device=model.device)
    generator.manual_seed(cfg.seed + index)
    return fit_view(model, scene, index, cfg, pose=True, appearance=True, generator=generator, progress=progress)


def aligned_cameras(cameras: Cameras, index: int, fit: ViewFit) -> Cameras:
    """``cameras`` with camera ``index`` moved by ``fit``'s pose correction (the others as they are)."""
    if fit.delta is None:
        return cameras
    corrections = CameraCorrections(1)
    with torch.no_grad():
        corrections.delta.copy_(fit.delta.to(corrections.delta)[None])
        c2w = cameras.c2w.clone()
        c2w[index] = corrections.c2w(cameras.c2w[index:index + 1])[0]
    return replace(cameras, c2w=c2w)
