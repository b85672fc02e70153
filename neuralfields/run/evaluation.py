"""Evaluation of a model against ground-truth images: PSNR/SSIM per image and mean, renders as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data.scene import Scene, composite_background
from .folder import save_png
from .metrics import psnr, ssim


def spread_indices(n_total: int, n: int | None) -> list[int]:
    """``n`` indices spread evenly over ``range(n_total)`` (all when ``n`` is None)."""
    n = n_total if n is None else min(n, n_total)
    return sorted({int(round(k)) for k in np.linspace(0, n_total - 1, n)}) if n else []


def evaluate_model(model, scene: Scene, indices: list[int] | None = None, out_dir: Path | None = None,
                   progress: bool = False) -> dict:
    """Render ``scene`` images with ``model`` (anything with ``render_camera`` and ``background``)
    and compare with the ground truth over the run's background.

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
