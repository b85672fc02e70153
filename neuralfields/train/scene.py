"""Scene training: the loop with image rays and the photometric objective.

One step: the model's training hooks (its sampler's own cadence) -> random rays over all
training pixels -> ``model.render_rays`` -> photometric loss + ``model.extra_losses`` (the
field's regulariser, the sampler's own losses) -> Adam. The ray count adapts so each batch holds
about ``target_samples`` samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..config import RunConfig
from ..data.scene import Scene
from ..fields import resolved_options
from ..loop import Part, StepResult, TrainLoop, make_loop, scene_loop_config, seed_everything
from ..render.rays import RayBatch
from ..run.folder import RunFolder
from ..run.metrics import psnr_of
from ..scene_model import SceneInfo, SceneModel, build_model
from ..scoring import score_model, spread_indices
from ..selection import Selection
from ..speed import float_outputs, mlp_autocast
from .batches import ImageRays
from .losses import rgb_loss


class PhotometricObjective:
    """Render the batch's rays and compare with their pixels (``huber`` or ``mse``), plus the
    model's own extra losses.

    ``mixed_precision`` (``train.mixed_precision``; CUDA only, ignored elsewhere): rendering runs
    under bf16 autocast, so the networks' matmuls run in bf16; their outputs come back as float32
    (:func:`~neuralfields.speed.float_outputs`), so compositing and the losses stay float32.
    """

    def __init__(self, model: SceneModel, loss: str = "huber", mixed_precision: bool = False):
        self.model, self.loss = model, loss
        self.mixed_precision = mixed_precision and model.device.type == "cuda"
        if self.mixed_precision:
            float_outputs(model)

    def __call__(self, batch: RayBatch, step: int) -> StepResult:
        self.model.train()
        with mlp_autocast(self.model.device, self.mixed_precision):
            out = self.model.render_rays(batch, training=True)
        loss = rgb_loss(out.rgb, batch.pixels, self.loss)
        total = loss
        for extra in self.model.extra_losses(out).values():
            total = total + extra
        errors = ((out.rgb.detach() - batch.pixels) ** 2).mean(-1)  # [R]
        return StepResult(total, {"loss": loss.detach(), "psnr": psnr_of(errors.mean())},
                          out.n_samples, errors)

    def param_groups(self, lr: float) -> list[dict]:
        return []  # everything trained is the model's


def scene_trainer(cfg: RunConfig, train_scene: Scene, val_scene: Scene | None = None,
                  run_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                  log: Callable[[str], None] = print, device: torch.device | str = "cpu") -> TrainLoop:
    """The training loop of one field on one scene, writing into ``run_dir`` (None: nothing written).

    ``resume`` continues from the newest good checkpoint in ``run_dir``. The loop's ``model`` is
    the :class:`~neuralfields.scene_model.SceneModel`.
    """
    t = cfg.train
    seed_everything(t.seed)
    cfg.field.options = resolved_options(cfg.field.name, cfg.field.options)
    model = build_model(cfg, SceneInfo.from_scene(train_scene), device)
    if t.compile:
        model.field.compile()
    if t.lr is None:
        t.lr = model.field.recommended_lr  # recorded in config.json as used
    validate = None
    if val_scene is not None:
        validate = lambda: score_model(model, val_scene, spread_indices(len(val_scene), t.eval_images))  # noqa: E731
    run = None if run_dir is None else RunFolder(run_dir, t.keep_checkpoints)
    source = ImageRays(train_scene, cfg.data.background, model.device,
                       Selection(t.selection, t.select.validate("train.select")))
    # Checkpoints from before error maps resume with a fresh map.
    loop = make_loop(scene_loop_config(t, model.sampler.initial_samples_per_ray, record=cfg.to_dict()), model, source,
                     PhotometricObjective(model, t.loss, t.mixed_precision), run, validate=validate,
                     parts={"selection": Part(source, required=False)}, progress=progress, log=log)
    if resume and run is not None:
        loop.resume()
    if run is not None and loop.main:  # with several ranks, rank 0 writes the run folder
        run.write_config(cfg.to_dict())
    return loop
