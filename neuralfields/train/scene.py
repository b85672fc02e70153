"""Scene training: the loop with image rays, the photometric objective and the sampler's updates.

One step: random rays over all training pixels -> the sampler places samples (its occupancy
grid refreshed at its own cadence) -> :func:`~neuralfields.render.evaluate` -> photometric loss
(+ the field's own regulariser) -> Adam. The ray count adapts so each batch holds about
``target_samples`` samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..config import RunConfig
from ..data.scene import Scene
from ..fields import resolved_options
from ..model import SceneInfo, SceneModel, build_model
from ..render.rays import RayBatch
from ..run.evaluation import evaluate_model, spread_indices
from ..run.folder import RunFolder
from ..run.metrics import mse_to_psnr
from ..selection import Selection
from .batches import ImageRays
from ..loop import StepResult, TrainLoop, adam, loop_config, ray_batch_size, seed_everything, step_decay
from .losses import rgb_loss


def sampler_loss(sampler, out) -> torch.Tensor | None:
    """The sampler's own training loss (a proposal sampler's interlevel loss), if it has one."""
    return sampler.loss(out.samples, out.weights) if hasattr(sampler, "loss") else None


class PhotometricObjective:
    """Render the batch's rays and compare with their pixels (``huber`` or ``mse``)."""

    def __init__(self, model: SceneModel, loss: str = "huber"):
        self.model, self.loss = model, loss

    def __call__(self, batch: RayBatch, step: int) -> StepResult:
        field = self.model.field
        field.train()
        out = self.model.renderer.render_rays(field, batch, training=True)
        loss = rgb_loss(out.rgb, batch.pixels, self.loss)
        total = loss
        for extra in (field.regularization(), sampler_loss(self.model.sampler, out)):
            if extra is not None:
                total = total + extra
        errors = ((out.rgb.detach() - batch.pixels) ** 2).mean(-1)  # [R]
        return StepResult(total, {"loss": float(loss.detach()), "psnr": mse_to_psnr(errors.mean())},
                          out.n_samples, errors)


def scene_trainer(cfg: RunConfig, train_scene: Scene, val_scene: Scene | None = None,
                  run_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                  log: Callable[[str], None] = print, device: torch.device | str = "cpu") -> TrainLoop:
    """The training loop of one field on one scene, writing into ``run_dir`` (None: nothing written).

    ``resume`` continues from the newest good checkpoint in ``run_dir``. The loop's ``model`` is
    the :class:`~neuralfields.model.SceneModel`.
    """
    t = cfg.train
    seed_everything(t.seed)
    cfg.field.options = resolved_options(cfg.field.name, cfg.field.options)
    model = build_model(cfg, SceneInfo.from_scene(train_scene), device)
    if t.compile:
        model.field.compile()
    if t.lr is None:
        t.lr = model.field.recommended_lr  # recorded in config.json as used
    optimizer = adam(model.param_groups(t.lr, t.weight_decay), t.adam_beta2)
    evaluate = None
    if val_scene is not None:
        evaluate = lambda: evaluate_model(model, val_scene, spread_indices(len(val_scene), t.eval_images))  # noqa: E731
    run = None if run_dir is None else RunFolder(run_dir, t.keep_checkpoints)
    source = ImageRays(train_scene, cfg.data.background, model.device,
                       Selection(t.selection, t.select.validate("train.select")))
    loop = TrainLoop(model, optimizer, source, PhotometricObjective(model, t.loss), step_decay(t), ray_batch_size(t, model.sampler), loop_config(t),
                     before_step=[lambda step: model.sampler.update(step, model.field)], evaluate=evaluate,
                     parts={"selection": source}, run=run, config=cfg.to_dict(), num_parameters=model.field.num_parameters,
                     progress=progress, log=log)
    if resume and run is not None:
        loop.resume()
    if run is not None and loop.main:  # with several ranks, rank 0 writes the run folder
        run.write_config(cfg.to_dict())
    return loop
