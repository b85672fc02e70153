"""Fitting a 2D signal (an image) with any registered field.

The field is built with ``in_dim=2, view_dependent=False, out_dim=C``; pixel centres map to
``[-1, 1]^2`` (x along the width, y along the height) and the colour is
``field.color(x, None, field.raw_density(x)[1])``. Fitting is the shared training loop
(:mod:`neuralfields.loop`) with image pixels as the batch source: each step draws
``batch`` random pixels (or takes the whole image), minimises the MSE with Adam and decays the
learning rate exponentially to ``lr_decay`` times its start. Fields with a data-dependent initialisation
(``init_from_signal``) receive the pixel centres weighted by the image's gradient magnitude.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..device import module_device
from ..fields import Field, build_field, resolved_options
from ..run.folder import RunFolder
from ..selection import IndexDraw, Selection, SelectionConfig
from ..run.metrics import psnr, psnr_of, ssim
from ..loop import BatchSize, ExponentialDecay, LoopConfig, Part, StepResult, make_loop, seed_everything
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
    checkpoint_every: int = 0  # with an output folder: checkpoints every N steps (and at the end)
    # With random batches: uniform pixels, or partly the pixels with the largest errors (int) or
    # drawn in proportion to them (errormap), from a per-pixel error map (neuralfields.selection).
    # errormap by measurement (docs/bench_selection.md): the best or level at equal time for SIREN
    # and the hash grid on camera and astronaut; int helps SIREN as much but slows the hash grid.
    selection: str = "errormap"
    select: SelectionConfig = field(default_factory=SelectionConfig)


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


def pixel_coords(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Pixel centres ``[H*W, 2]`` in ``[-1, 1]^2``, row-major, ``(x, y)`` order."""
    ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width * 2 - 1
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
    """Field colours ``[N, C]`` at points ``[N, 2]`` (a 2D field's colour reads its geometry features)."""
    _, geo = model.raw_density(coords)
    return model.color(coords, None, geo)


@torch.no_grad()
def render_image(model: Field, height: int, width: int, chunk: int = 1 << 16) -> torch.Tensor:
    """The field over the pixel grid as ``[H, W, C]`` clipped to ``[0, 1]`` (on the CPU)."""
    was_training = model.training
    model.eval()
    coords = pixel_coords(height, width, module_device(model))
    out = torch.cat([query_colors(model, coords[i : i + chunk]) for i in range(0, coords.shape[0], chunk)])
    model.train(was_training)
    return out.reshape(height, width, -1).clamp(0, 1).cpu()


def build_image_field(name: str, options: dict | None, channels: int) -> Field:
    return build_field(name, options, in_dim=2, view_dependent=False, out_dim=channels)


@dataclass
class PixelBatch:
    """``coords [B, 2]`` in ``[-1, 1]^2`` and their target ``colors [B, C]``."""

    coords: torch.Tensor
    colors: torch.Tensor

    def __len__(self) -> int:
        return self.coords.shape[0]


class ImagePixels:
    """Batch source: ``n`` pixels of one image chosen by ``selection`` (each pixel its own
    error-map cell), or the whole image when ``n`` covers it."""

    def __init__(self, coords: torch.Tensor, colors: torch.Tensor, selection: Selection | None = None):
        self.coords, self.colors = coords, colors
        self.draw = IndexDraw(coords.shape[0], selection or Selection(), coords.device)
        self.whole = False

    def next(self, n: int, progress: float = 0.0) -> PixelBatch:
        self.whole = n >= self.coords.shape[0]
        if self.whole:
            return PixelBatch(self.coords, self.colors)
        idx = self.draw.next(n, progress)
        return PixelBatch(self.coords[idx], self.colors[idx])

    def observe(self, batch: PixelBatch, errors: torch.Tensor) -> None:
        if not self.whole:
            self.draw.observe(errors)

    def state_dict(self) -> dict:
        return self.draw.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.draw.load_state_dict(state)


class SignalObjective:
    """Mean squared error of the field's colours at the batch's coordinates."""

    def __init__(self, field: Field):
        self.field = field

    def __call__(self, batch: PixelBatch, step: int) -> StepResult:
        self.field.train()
        errors = ((query_colors(self.field, batch.coords) - batch.colors) ** 2).mean(-1)  # [B]
        loss = errors.mean()
        return StepResult(loss, {"loss": loss.detach(), "psnr": psnr_of(loss)},
                          errors=errors.detach())

    def param_groups(self, lr: float) -> list[dict]:
        return []  # everything trained is the field's


class ImageEvaluator:
    """Full-image PSNR/SSIM of the field; keeps the latest reconstruction ``[H, W, C]``."""

    def __init__(self, field: Field, target: torch.Tensor, chunk: int):
        self.field, self.target, self.chunk = field, target, chunk
        self.last: torch.Tensor | None = None

    def __call__(self) -> dict:
        h, w, _ = self.target.shape
        self.last = render_image(self.field, h, w, self.chunk)
        return {"psnr": psnr(self.last, self.target), "ssim": ssim(self.last, self.target)}


class SignalModel:
    """What a fit trains: one field (no sampler, so no training hooks); checkpoints hold its parameters."""

    def __init__(self, field: Field):
        self.field = field

    @property
    def num_parameters(self) -> int:
        return self.field.num_parameters

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        return self.field.param_groups(lr, weight_decay)

    def training_hooks(self) -> list:
        return []

    def state_dict(self) -> dict:
        return {"field": self.field.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.field.load_state_dict(state["field"])


def fit_image(image: np.ndarray, name: str, options: dict | None = None, cfg: FitConfig | None = None,
              progress: bool = True, out_dir: str | Path | None = None, resume: bool = False,
              device: torch.device | str = "cpu") -> FitResult:
    """Fit ``image [H, W, C]`` (floats in [0, 1]) with field ``name`` and return the result.

    This is the training loop with image pixels as the batch source and the squared error as the
    objective. With ``out_dir`` the loop writes checkpoints there, and ``resume`` continues the
    newest one.
    """
    cfg = cfg or FitConfig()
    seed_everything(cfg.seed)
    target = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32)
    h, w, c = target.shape
    model = build_image_field(name, options, c).to(device)
    coords, colors = pixel_coords(h, w, device), target.reshape(-1, c).to(device)
    model.init_from_signal(coords, gradient_magnitude(target).reshape(-1).to(device))
    lr = cfg.lr if cfg.lr is not None else model.recommended_lr
    n = h * w
    batch = n if cfg.batch <= 0 or cfg.batch >= n else cfg.batch
    evaluator = ImageEvaluator(model, target, cfg.chunk)
    config = {"fit": asdict(cfg), "field": {"name": name, "options": resolved_options(name, options)},
              "image": {"height": h, "width": w, "channels": c}}
    source = ImagePixels(coords, colors, Selection(cfg.selection, cfg.select.validate("select")))
    # PyTorch's beta2 (0.999): the 2D fitting figures were measured with it.
    settings = LoopConfig(cfg.steps, lr, ExponentialDecay(cfg.steps, cfg.lr_decay), BatchSize(batch), adam_beta2=0.999,
                          log_every=10, eval_steps=set(cfg.eval_steps), checkpoint_every=cfg.checkpoint_every,
                          seed=cfg.seed, desc=f"fit {name}", record=config)
    loop = make_loop(settings, SignalModel(model), source, SignalObjective(model),
                     None if out_dir is None else RunFolder(out_dir, 2), validate=evaluator,
                     parts={"selection": Part(source, required=False)}, progress=progress)
    if resume:
        loop.resume()
    summary = loop.fit()
    wanted = set(cfg.eval_steps) or {cfg.steps}
    checkpoints = [{"step": e["step"], "psnr": e["psnr"], "seconds": e["seconds"]}
                   for e in loop.validations if e["step"] in wanted]
    return FitResult(evaluator.last.numpy(), summary["val_psnr"], summary["val_ssim"], summary["train_seconds"],
                     model.num_parameters, cfg.steps, lr, batch, name, resolved_options(name, options), checkpoints)


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
