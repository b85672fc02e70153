"""The trainer shared by every field: random ray batches, Adam, occupancy updates, eval, checkpoints.

One step: draw rays uniformly over all training pixels -> render through the occupancy grid ->
photometric loss (+ the field's own regulariser) -> Adam. Every ``grid_update_every`` steps the
grid re-queries the field's density. The ray count adapts so each batch holds about
``target_samples`` samples, as nerfacc does, which keeps the step cost steady while the grid
sharpens.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..config import RunConfig
from ..data.scene import Scene, background_color, composite_background
from ..fields import resolved_options
from ..model import SceneInfo, SceneModel, build_model
from .checkpoints import latest_checkpoint, save_checkpoint
from .losses import rgb_loss
from .metrics import mse_to_psnr, psnr, ssim


def lr_factor(step: int, cfg, seconds: float = 0.0) -> float:
    """Linear warm-up, then a step decay at fractions of the run.

    The run's progress is the larger of ``step / steps`` and, with a time budget, ``seconds /
    time_budget``: a run cut short by its time budget still anneals before it stops.
    """
    warm = min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
    progress = step / max(cfg.steps, 1)
    if cfg.time_budget:
        progress = max(progress, seconds / cfg.time_budget)
    decays = sum(progress >= m for m in cfg.decay_milestones)
    return warm * cfg.decay_gamma**decays


def save_png(path: Path, image: torch.Tensor) -> None:
    """Write ``[H, W, C]`` floats in [0, 1] as an 8-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (image.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(path)


def evaluate_model(model: SceneModel, scene: Scene, indices: list[int] | None = None, out_dir: Path | None = None,
                   progress: bool = False) -> dict:
    """Render ``scene`` images and compare with the ground truth over the run's background.

    Returns ``{"psnr", "ssim", "images": [{"index", "file", "psnr", "ssim"}, ...]}``; with
    ``out_dir`` the renders (and depth) are written there as PNG.
    """
    indices = list(range(len(scene))) if indices is None else indices
    background = model.background
    rows = []
    for i in tqdm(indices, desc="eval", disable=not progress, leave=False):
        time_value = None if scene.times is None else float(scene.times[i])
        out = model.render_camera(scene.cameras, i, time_value)
        target = composite_background(scene.image(i), background)
        row = {"index": i, "file": scene.files[i] if scene.files else str(i),
               "psnr": psnr(out["rgb"], target), "ssim": ssim(out["rgb"], target)}
        rows.append(row)
        if out_dir is not None:
            save_png(out_dir / f"{i:04d}_rgb.png", out["rgb"])
            depth = out["depth"] * (out["opacity"] > 0.5)
            save_png(out_dir / f"{i:04d}_depth.png", (depth / depth.max().clamp_min(1e-6))[..., None])
    return {
        "psnr": float(np.mean([r["psnr"] for r in rows])) if rows else float("nan"),
        "ssim": float(np.mean([r["ssim"] for r in rows])) if rows else float("nan"),
        "images": rows,
    }


class Trainer:
    """Trains one field on one scene into a run folder.

    Args:
        cfg: the resolved run config (written to ``config.json``).
        train_scene / val_scene: loaded splits (val may be None).
        run_dir: output folder; None trains without writing anything (tests, benchmarks).
        resume: continue from the newest good checkpoint in ``run_dir``.
    """

    def __init__(self, cfg: RunConfig, train_scene: Scene, val_scene: Scene | None = None,
                 run_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                 log: Callable[[str], None] = print):
        self.cfg, self.train_scene, self.val_scene = cfg, train_scene, val_scene
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.progress, self.log = progress, log
        torch.manual_seed(cfg.train.seed)
        random.seed(cfg.train.seed)
        np.random.seed(cfg.train.seed)
        cfg.field.options = resolved_options(cfg.field.name, cfg.field.options)
        self.model: SceneModel = build_model(cfg, SceneInfo.from_scene(train_scene))
        if cfg.train.compile:
            self.model.field.compile()
        if cfg.train.lr is None:
            cfg.train.lr = self.model.field.recommended_lr  # recorded in config.json as used
        self.optimizer = torch.optim.Adam(self.model.field.param_groups(cfg.train.lr, cfg.train.weight_decay), eps=1e-15)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.step = 0
        # Until the occupancy grid has culled anything every ray marches the whole box (about half
        # a diagonal of samples): start with a ray count that keeps the first batches near target.
        renderer = self.model.renderer
        full_box = max(1, int(0.5 * renderer.diagonal / renderer.step_size))
        self.n_rays = min(cfg.train.init_rays, max(256, cfg.train.target_samples // full_box))
        self.train_seconds = 0.0
        self.last_eval: dict | None = None
        if resume and self.run_dir is not None:
            self._resume()
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    # ----------------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {
            **self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "n_rays": self.n_rays,
            "train_seconds": self.train_seconds,
            "rng": torch.get_rng_state(),
            "config": self.cfg.to_dict(),
        }

    def _resume(self) -> None:
        found = latest_checkpoint(self.run_dir)
        if found is None:
            self.log(f"{self.run_dir}: no checkpoint to resume from; starting from scratch")
            return
        path, state = found
        self.load_state(path, state)
        self.log(f"resumed from {path} at step {self.step}")

    def load_state(self, path: Path, state: dict) -> None:
        """Restore training from checkpoint ``state`` (read from ``path``, named in errors)."""
        self.model.field.load_state_dict(state["field"])
        self.model.grid.load_state_dict(state["grid"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.n_rays = state["step"], state["n_rays"]
        self.train_seconds = state.get("train_seconds", 0.0)
        torch.set_rng_state(state["rng"])

    def save(self) -> Path | None:
        if self.run_dir is None:
            return None
        return save_checkpoint(self.run_dir, self.step, self.state_dict(), self.cfg.train.keep_checkpoints)

    # ------------------------------------------------------------------------------- training
    def sample_batch(self, n_rays: int) -> dict[str, torch.Tensor]:
        """Random rays over all training pixels with their target colours ``[R, 3]``."""
        scene = self.train_scene
        img = torch.randint(0, len(scene), (n_rays,))
        y = torch.randint(0, scene.height, (n_rays,))
        x = torch.randint(0, scene.width, (n_rays,))
        origins, dirs = scene.cameras.rays(img, x.float() + 0.5, y.float() + 0.5)
        background = self.batch_background(n_rays)
        target = composite_background(scene.pixels(img, y, x), background)
        times = None if scene.times is None else scene.times[img]
        return {"origins": origins, "dirs": dirs, "target": target, "background": background, "times": times}

    def batch_background(self, n_rays: int) -> torch.Tensor:
        """Background colours ``[R, 3]`` of a training batch."""
        if self.cfg.data.background == "random":
            return torch.rand(n_rays, 3)  # teaches the field that empty space is transparent
        return background_color(self.cfg.data.background).expand(n_rays, 3)

    def set_learning_rates(self) -> None:
        """Each parameter group's base rate times the schedule at this step and training time."""
        factor = lr_factor(self.step, self.cfg.train, self.train_seconds)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor

    def adapt_ray_count(self, n_samples: int) -> None:
        """Size the next batch so it carries about ``target_samples`` samples."""
        t = self.cfg.train
        if n_samples > 0:
            self.n_rays = int(min(t.max_rays, max(256, self.n_rays * t.target_samples / n_samples)))

    def update_grid(self) -> None:
        t = self.cfg.train
        if self.step % t.grid_update_every != 0:
            return
        model = self.model
        if model.info.dynamic:
            times = model.info.times
            # A cell is occupied if matter passes through it at any training time.
            def fn(x):
                tt = times[torch.randint(0, len(times), (x.shape[0],))][:, None]
                return model.field.density(model.renderer.normalize(x), tt)[0]
        else:
            fn = model.renderer.density_fn(model.field)
        model.grid.update(fn, model.renderer.occupancy_step, warmup=self.step < t.grid_warmup_steps,
                          ema_decay=t.grid_ema_decay, threshold=t.density_threshold)

    def train_step(self) -> dict[str, float]:
        t = self.cfg.train
        self.model.field.train()
        self.set_learning_rates()
        self.update_grid()
        batch = self.sample_batch(self.n_rays)
        out = self.model.renderer.render_rays(self.model.field, batch["origins"], batch["dirs"], batch["times"],
                                              batch["background"], training=True)
        n_samples = int(out["n_samples"])
        loss = rgb_loss(out["rgb"], batch["target"], t.loss)
        reg = self.model.field.regularization()
        total = loss if reg is None else loss + reg
        self.optimizer.zero_grad(set_to_none=True)
        if n_samples > 0:
            total.backward()
            self.optimizer.step()
        self.adapt_ray_count(n_samples)
        self.step += 1
        mse = torch.mean((out["rgb"].detach() - batch["target"]) ** 2)
        return {"loss": float(loss.detach()), "psnr": mse_to_psnr(mse), "n_rays": batch["origins"].shape[0], "n_samples": n_samples}

    def evaluate(self, scene: Scene | None = None, n_images: int | None = None, out_dir: Path | None = None) -> dict:
        scene = scene or self.val_scene
        if scene is None:
            return {}
        n = len(scene) if n_images is None else min(n_images, len(scene))
        indices = sorted({int(round(k)) for k in np.linspace(0, len(scene) - 1, n)}) if n else []
        return evaluate_model(self.model, scene, indices, out_dir)

    def _log_metrics(self, row: dict) -> None:
        if self.run_dir is not None:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

    def fit(self) -> dict:
        """Train to ``cfg.train.steps`` (or the time budget), evaluating and checkpointing on the way."""
        t = self.cfg.train
        bar = tqdm(total=t.steps, initial=self.step, desc="train", disable=not self.progress,
                   dynamic_ncols=True, mininterval=0.5)
        stats = {"loss": float("nan"), "psnr": float("nan")}
        try:
            while self.step < t.steps:
                if t.time_budget is not None and self.train_seconds >= t.time_budget:
                    self.log(f"time budget of {t.time_budget:.0f} s reached at step {self.step}")
                    break
                start = time.perf_counter()
                stats = self.train_step()
                self.train_seconds += time.perf_counter() - start
                bar.update(1)
                postfix = {"loss": f"{stats['loss']:.4f}", "psnr": f"{stats['psnr']:.2f}", "rays": stats["n_rays"]}
                if self.last_eval:
                    postfix["val"] = f"{self.last_eval['psnr']:.2f}"
                bar.set_postfix(postfix, refresh=False)
                if self.step % 50 == 0 or self.step == t.steps:
                    self._log_metrics({"step": self.step, "time": self.train_seconds, **stats})
                if t.eval_every and self.step % t.eval_every == 0 and self.val_scene is not None and self.step < t.steps:
                    self.last_eval = self.evaluate(n_images=t.eval_images)
                    self._log_metrics({"step": self.step, "time": self.train_seconds, "split": "val",
                                       "val_psnr": self.last_eval["psnr"], "val_ssim": self.last_eval["ssim"]})
                if t.checkpoint_every and self.step % t.checkpoint_every == 0:
                    self.save()
        except KeyboardInterrupt:
            path = self.save()
            bar.close()
            if path is not None:
                self.log(f"interrupted at step {self.step}; checkpoint saved to {path} (continue with --resume)")
            raise
        bar.close()
        self.save()
        summary = {"steps": self.step, "train_seconds": self.train_seconds, "final_loss": stats["loss"],
                   "final_train_psnr": stats["psnr"], "num_parameters": self.model.field.num_parameters}
        if self.val_scene is not None:
            final = self.evaluate(n_images=t.eval_images)
            summary.update(val_psnr=final["psnr"], val_ssim=final["ssim"])
            self._log_metrics({"step": self.step, "time": self.train_seconds, "split": "val",
                               "val_psnr": final["psnr"], "val_ssim": final["ssim"]})
        if self.run_dir is not None:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

