"""Scoring a model against ground-truth images: PSNR/SSIM per image and mean, renders as PNG.

Above rendering and the run folder: ``eval``, the training loop's validation and the benchmarks
score through :func:`score_model`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from .data.scene import Scene, composite_background
from .render.rays import RayBatch
from .run.folder import save_png
from .run.metrics import psnr, ssim


def spread_indices(n_total: int, n: int | None) -> list[int]:
    """``n`` indices spread evenly over ``range(n_total)`` (all when ``n`` is None)."""
    n = n_total if n is None else min(n, n_total)
    return sorted({int(round(k)) for k in np.linspace(0, n_total - 1, n)}) if n else []


def fit_appearance(model, scene: Scene, index: int, steps: int = 60, rays: int = 2048, lr: float = 0.05) -> torch.Tensor:
    """An appearance code ``[C]`` for held-out image ``index``, optimised on its left half only
    (the field stays fixed): NeRF-W's protocol for scoring a model with per-image codes."""
    codes, device = model.appearance, model.device
    cameras = scene.cameras.to(device)
    image = composite_background(scene.image(index), model.background).to(device)
    h, w = image.shape[:2]
    code = codes.default_code().detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([code], lr=lr)
    frozen = [p for p in model.field.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    model.field.eval()
    try:
        for _ in range(steps):
            y = torch.randint(0, h, (rays,), device=device)
            x = torch.randint(0, max(w // 2, 1), (rays,), device=device)
            codes.fix(code)
            out = model.render_rays(RayBatch.from_pixels(cameras, index, y * w + x, background=model.background.to(device)))
            loss = torch.nn.functional.mse_loss(out.rgb, image[y, x])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        codes.fix(None)
        for p in frozen:
            p.requires_grad_(True)
    return code.detach()


def right_half_scores(model, scene: Scene, index: int, rendered: Tensor, target: Tensor) -> tuple[float, float]:
    """NeRF-W's protocol for image ``index``: PSNR on the right half of ``rendered [H, W, 3]`` (the
    mean code's render) and of a render with a code fitted on the left half, against ``target``."""
    right = target.shape[1] // 2
    time_value = None if scene.times is None else float(scene.times[index])
    model.appearance.fix(fit_appearance(model, scene, index))
    try:
        fitted = model.render_camera(scene.cameras, index, time_value)["rgb"]
    finally:
        model.appearance.fix(None)
    return psnr(rendered[:, right:], target[:, right:]), psnr(fitted[:, right:], target[:, right:])


def score_model(model, scene: Scene, indices: list[int] | None = None, out_dir: Path | None = None,
                   progress: bool = False, appearance_protocol: bool = False) -> dict:
    """Render ``scene`` images with ``model`` (anything with ``render_camera`` and ``background``)
    and compare with the ground truth over the run's background.

    Returns ``{"psnr", "ssim", "images": [{"index", "file", "psnr", "ssim"}, ...]}``; with
    ``out_dir`` the renders (and depth) are written there as PNG. Models with per-image
    appearance codes render held-out images with the mean code; with ``appearance_protocol``
    each image also gets NeRF-W's score: a code fitted on its left half (:func:`fit_appearance`),
    PSNR on its right half (``psnr_right_fitted``), beside the mean code's on the same half
    (``psnr_right_mean``).
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
        if appearance_protocol and getattr(model, "appearance", None) is not None:
            row["psnr_right_mean"], row["psnr_right_fitted"] = right_half_scores(model, scene, i, out["rgb"], target)
        rows.append(row)
        if out_dir is not None:
            save_png(out_dir / f"{i:04d}_rgb.png", out["rgb"])
            depth = out["depth"] * (out["opacity"] > 0.5)
            save_png(out_dir / f"{i:04d}_depth.png", (depth / depth.max().clamp_min(1e-6))[..., None])
    result = {
        "psnr": float(np.mean([r["psnr"] for r in rows])) if rows else float("nan"),
        "ssim": float(np.mean([r["ssim"] for r in rows])) if rows else float("nan"),
        "images": rows,
    }
    for key in ("psnr_right_mean", "psnr_right_fitted"):
        if rows and key in rows[0]:
            result[key] = float(np.mean([r[key] for r in rows]))
    return result
