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
from .pose_alignment import PoseAlignmentConfig, align_view, aligned_cameras, fit_view, fitting_half
from .run.folder import save_png
from .run.metrics import psnr, ssim


def spread_indices(n_total: int, n: int | None) -> list[int]:
    """``n`` indices spread evenly over ``range(n_total)`` (all when ``n`` is None)."""
    n = n_total if n is None else min(n, n_total)
    return sorted({int(round(k)) for k in np.linspace(0, n_total - 1, n)}) if n else []


def fit_appearance(model, scene: Scene, index: int, steps: int = 60, rays: int = 2048, lr: float = 0.05) -> torch.Tensor:
    """An appearance code ``[C]`` for held-out image ``index``, optimised on its left half only
    (the field stays fixed): NeRF-W's protocol for scoring a model with per-image codes."""
    cfg = PoseAlignmentConfig(steps=steps, rays=rays, appearance_lr=lr)
    return fit_view(model, scene, index, cfg, pose=False, appearance=True).code


def right_half_scores(model, scene: Scene, index: int, rendered: Tensor, target: Tensor) -> tuple[float, float]:
    """NeRF-W's protocol for image ``index``: PSNR on the right half of ``rendered [H, W, 3]`` (the
    mean code's render) and of a render with a code fitted on the left half, against ``target``."""
    right = fitting_half(target.shape[1])
    time_value = None if scene.times is None else float(scene.times[index])
    model.appearance.fix(fit_appearance(model, scene, index))
    try:
        fitted = model.render_camera(scene.cameras, index, time_value)["rgb"]
    finally:
        model.appearance.fix(None)
    return psnr(rendered[:, right:], target[:, right:]), psnr(fitted[:, right:], target[:, right:])


def aligned_scores(model, scene: Scene, index: int, given: Tensor, target: Tensor, cfg: PoseAlignmentConfig,
                   progress: bool = False) -> tuple[dict[str, Tensor], dict]:
    """NeRF-W's protocol with the pose for image ``index``: its pose (and appearance code, models
    with codes) fitted on the left half (:func:`~neuralfields.pose_alignment.align_view`), the view
    rendered from the aligned pose and scored on the right half only.

    ``given [H, W, 3]`` is the render from the given pose (default code) and ``target [H, W, 3]`` the
    image. Returns the aligned render's buffers and the row: ``psnr``/``ssim`` (aligned, right half),
    ``psnr_given_pose`` (given pose, right half; with codes, the code fitted alone on the left half,
    which is also ``psnr_right_fitted`` beside the mean code's ``psnr_right_mean``), and the size of
    the correction (``rotation_deg``, ``translation`` in scene units).
    """
    right = fitting_half(target.shape[1])
    truth = target[:, right:]
    row = {}
    if model.appearance is not None:
        row["psnr_right_mean"], row["psnr_right_fitted"] = right_half_scores(model, scene, index, given, target)
        row["psnr_given_pose"] = row["psnr_right_fitted"]
    else:
        row["psnr_given_pose"] = psnr(given[:, right:], truth)
    fit = align_view(model, scene, index, cfg, progress)
    time_value = None if scene.times is None else float(scene.times[index])
    if fit.code is not None:
        model.appearance.fix(fit.code)
    try:
        out = model.render_camera(aligned_cameras(scene.cameras, index, fit), index, time_value)
    finally:
        if fit.code is not None:
            model.appearance.fix(None)
    scored = out["rgb"][:, right:]
    row.update(psnr=psnr(scored, truth), ssim=ssim(scored, truth),
               rotation_deg=fit.rotation_degrees, translation=fit.translation)
    return out, row


def score_model(model, scene: Scene, indices: list[int] | None = None, out_dir: Path | None = None,
                   progress: bool = False, appearance_protocol: bool = False,
                   align: PoseAlignmentConfig | None = None) -> dict:
    """Render ``scene`` images with ``model`` (anything with ``render_camera`` and ``background``)
    and compare with the ground truth over the run's background.

    Returns ``{"psnr", "ssim", "images": [{"index", "file", "psnr", "ssim"}, ...]}``; with
    ``out_dir`` the renders (and depth) are written there as PNG. Models with per-image
    appearance codes render held-out images with the mean code; with ``appearance_protocol``
    each image also gets NeRF-W's score: a code fitted on its left half (:func:`fit_appearance`),
    PSNR on its right half (``psnr_right_fitted``), beside the mean code's on the same half
    (``psnr_right_mean``).

    With ``align`` (``model`` a :class:`~neuralfields.scene_model.SceneModel`) every image's pose is
    fitted on its left half and ``psnr``/``ssim`` score its right half only, rendered from the aligned
    pose (the PNG shows that render); rows and result also hold ``psnr_given_pose``, the same half
    from the given pose (:func:`aligned_scores`).
    """
    indices = list(range(len(scene))) if indices is None else indices
    background = model.background
    rows = []
    for i in tqdm(indices, desc="eval (aligning poses)" if align else "eval", disable=not progress, leave=False):
        time_value = None if scene.times is None else float(scene.times[i])
        out = model.render_camera(scene.cameras, i, time_value)
        target = composite_background(scene.image(i), background)
        row = {"index": i, "file": scene.files[i] if scene.files else str(i)}
        if align is not None:
            out, scores = aligned_scores(model, scene, i, out["rgb"], target, align, progress)
            row.update(scores)
        else:
            row.update(psnr=psnr(out["rgb"], target), ssim=ssim(out["rgb"], target))
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
    for key in ("psnr_right_mean", "psnr_right_fitted", "psnr_given_pose", "rotation_deg", "translation"):
        if rows and key in rows[0]:
            result[key] = float(np.mean([r[key] for r in rows]))
    return result
