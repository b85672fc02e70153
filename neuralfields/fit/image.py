"""Fitting a 2D signal (an image) with any registered field.

The field is built with ``in_dim=2, view_dependent=False, out_dim=C``; pixel centres map to
``[-1, 1]^2`` (x along the width, y along the height) and the colour is
``field.color(x, None, field.raw_density(x)[1])``. Each step draws ``batch`` random pixels (or
takes the whole image), minimises the MSE with Adam and decays the learning rate exponentially
to ``lr_decay`` times its start. Fields with a data-dependent initialisation
(``init_from_signal``) receive the pixel centres weighted by the image's gradient magnitude.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..fields import Field, build_field, resolved_options
from ..train.metrics import mse_to_psnr, psnr, ssim
from .io import save_image


@dataclass
class FitConfig:
    steps: int = 2000
    batch: int = 0  # random pixels per step; 0 or >= H*W: the whole image every step
    lr: float | None = None  # None: the field's recommended rate (its config's ``lr``)
    lr_decay: float = 0.1  # the rate decays exponentially to lr * lr_decay at the last step
    seed: int = 0
    eval_steps: list[int] = field(default_factory=list)  # extra full-image evaluations (benchmarks)
    chunk: int = 1 << 16  # pixels per forward pass when rendering the whole image


@dataclass
class FitResult:
    reconstruction: np.ndarray  # [H, W, C] in [0, 1]
    psnr: float
    ssim: float
    seconds: float  # optimisation time, evaluations excluded
    num_parameters: int
    steps: int
    lr: float
    batch: int
    field: str
    options: dict
    checkpoints: list[dict] = field(default_factory=list)  # {"step", "psnr", "seconds"} at eval_steps

    def metrics(self) -> dict:
        out = asdict(self)
        out.pop("reconstruction")
        return out


def pixel_coords(height: int, width: int) -> torch.Tensor:
    """Pixel centres ``[H*W, 2]`` in ``[-1, 1]^2``, row-major, ``(x, y)`` order."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2)


def gradient_magnitude(image: torch.Tensor) -> torch.Tensor:
    """Finite-difference gradient magnitude ``[H, W]`` of ``[H, W, C]`` (summed over channels)."""
    gy = torch.zeros_like(image)
    gx = torch.zeros_like(image)
    gy[1:-1] = (image[2:] - image[:-2]) / 2
    gx[:, 1:-1] = (image[:, 2:] - image[:, :-2]) / 2
    return (gx.square() + gy.square()).sum(-1).sqrt()


def query_colors(model: Field, coords: torch.Tensor) -> torch.Tensor:
    """Field colours ``[N, C]`` at points ``[N, 2]``."""
    _, geo = model.raw_density(coords)
    return model.color(coords, None, geo)


@torch.no_grad()
def render_image(model: Field, height: int, width: int, chunk: int = 1 << 16) -> torch.Tensor:
    """The field over the pixel grid as ``[H, W, C]`` clipped to ``[0, 1]``."""
    was_training = model.training
    model.eval()
    coords = pixel_coords(height, width)
    out = torch.cat([query_colors(model, coords[i : i + chunk]) for i in range(0, coords.shape[0], chunk)])
    model.train(was_training)
    return out.reshape(height, width, -1).clamp(0, 1)


def build_image_field(name: str, options: dict | None, channels: int) -> Field:
    return build_field(name, options, in_dim=2, view_dependent=False, out_dim=channels)


def fit_image(image: np.ndarray, name: str, options: dict | None = None, cfg: FitConfig | None = None,
              progress: bool = True) -> FitResult:
    """Fit ``image [H, W, C]`` (floats in [0, 1]) with field ``name`` and return the result."""
    cfg = cfg or FitConfig()
    torch.manual_seed(cfg.seed)
    target = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32)
    h, w, c = target.shape
    model = build_image_field(name, options, c)
    coords, colors = pixel_coords(h, w), target.reshape(-1, c)
    init = getattr(model, "init_from_signal", None)
    if init is not None:
        init(coords, gradient_magnitude(target).reshape(-1))
    lr = cfg.lr if cfg.lr is not None else model.recommended_lr
    optimizer = torch.optim.Adam(model.param_groups(lr, 0.0), eps=1e-15)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    n = h * w
    batch = n if cfg.batch <= 0 or cfg.batch >= n else cfg.batch
    eval_steps = set(cfg.eval_steps)
    checkpoints: list[dict] = []
    seconds = 0.0
    bar = tqdm(range(cfg.steps), desc=f"fit {name}", disable=not progress, dynamic_ncols=True, mininterval=0.5)
    model.train()
    for step in bar:
        start = time.perf_counter()
        factor = cfg.lr_decay ** (step / max(cfg.steps - 1, 1))
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * factor
        if batch == n:
            x, y = coords, colors
        else:
            idx = torch.randint(0, n, (batch,))
            x, y = coords[idx], colors[idx]
        loss = torch.mean((query_colors(model, x) - y) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - start
        if step % 10 == 0 or step == cfg.steps - 1:
            bar.set_postfix({"psnr": f"{mse_to_psnr(loss.detach()):.2f}"}, refresh=False)
        if step + 1 in eval_steps and step + 1 < cfg.steps:
            checkpoints.append({"step": step + 1, "psnr": psnr(render_image(model, h, w, cfg.chunk), target), "seconds": seconds})
    bar.close()
    recon = render_image(model, h, w, cfg.chunk)
    final_psnr = psnr(recon, target)
    if cfg.steps in eval_steps or not eval_steps:
        checkpoints.append({"step": cfg.steps, "psnr": final_psnr, "seconds": seconds})
    return FitResult(recon.numpy(), final_psnr, ssim(recon, target), seconds, model.num_parameters, cfg.steps,
                     lr, batch, name, resolved_options(name, options), checkpoints)


def error_heatmap(error: np.ndarray, scale: float = 0.1) -> np.ndarray:
    """Absolute error ``[H, W]`` -> ``[H, W, 3]`` colours (black -> purple -> orange -> yellow at ``scale``)."""
    t = np.clip(error / scale, 0, 1)[..., None]
    stops = np.array([0.0, 0.35, 0.7, 1.0])
    colors = np.array([[0.0, 0.0, 0.02], [0.45, 0.05, 0.55], [0.95, 0.45, 0.1], [1.0, 1.0, 0.6]])
    return np.stack([np.interp(t[..., 0], stops, colors[:, k]) for k in range(3)], axis=-1).astype(np.float32)


def side_by_side(target: np.ndarray, recon: np.ndarray, scale: float = 0.1) -> np.ndarray:
    """``target | reconstruction | error heat map`` as one ``[H, 3W + 8, 3]`` image."""
    def rgb(img: np.ndarray) -> np.ndarray:
        return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img

    error = np.abs(recon - target).mean(-1)
    gap = np.ones((target.shape[0], 4, 3), dtype=np.float32)
    return np.concatenate([rgb(target), gap, rgb(recon), gap, error_heatmap(error, scale)], axis=1)


def write_outputs(result: FitResult, target: np.ndarray, out_dir: str | Path, extra: dict | None = None) -> dict[str, Path]:
    """Write ``reconstruction.png``, ``comparison.png`` and ``metrics.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"reconstruction": out / "reconstruction.png", "comparison": out / "comparison.png", "metrics": out / "metrics.json"}
    save_image(paths["reconstruction"], result.reconstruction)
    save_image(paths["comparison"], side_by_side(target, result.reconstruction))
    metrics = {**result.metrics(), "height": int(target.shape[0]), "width": int(target.shape[1]),
               "channels": int(target.shape[2]), "error_heatmap_scale": 0.1, **(extra or {})}
    paths["metrics"].write_text(json.dumps(metrics, indent=2))
    return paths
