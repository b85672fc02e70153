"""Coloured point clouds from rendered depth at training-like views.

Every pixel whose rendered opacity exceeds ``opacity_threshold`` contributes the point at its
rendered ray distance, coloured with the un-premultiplied rendered colour (``rgb / opacity``,
rendered over a black background so the run's background colour does not bleed into edges).
With a crop box (:mod:`.crop`) only the points inside it are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import NeuralFieldsError
from .crop import inside
from .views import default_time, render_views, training_views


@dataclass
class PointCloudConfig:
    views: int | None = None  # training cameras used (spread evenly); None = all
    downscale: float = 4.0  # render at 1/downscale of the training size
    opacity_threshold: float = 0.9
    max_points: int | None = None  # random subset when exceeded
    crop: list[float] | None = None  # [xmin, ymin, zmin, xmax, ymax, zmax] world units; None keeps all
    time: float | None = None  # dynamic runs (default 0)
    seed: int = 0


def export_pointcloud(model, cfg: PointCloudConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``points [P, 3]`` float32 and ``colors [P, 3]`` uint8 from a loaded ``SceneModel``."""
    cfg = cfg or PointCloudConfig()
    cams = training_views(model.info, cfg.views, cfg.downscale)
    time = default_time(model.info, cfg.time)
    points, colours = [], []
    for i, out in render_views(model, cams, time, ("rgb", "depth", "opacity"), background=torch.zeros(3)):
        keep = out["opacity"] > cfg.opacity_threshold
        if not keep.any():
            continue
        origins, dirs = cams.image_rays(i)
        points.append((origins[keep] + dirs[keep] * out["depth"][keep, None]).numpy())
        colours.append((out["rgb"][keep] / out["opacity"][keep, None]).clamp(0, 1).numpy())
    if not points:
        raise NeuralFieldsError("point cloud: no rendered pixel is opaque enough (lower the opacity threshold?)")
    pts, rgb = np.concatenate(points).astype(np.float32), np.concatenate(colours)
    if cfg.crop is not None:
        keep = inside(pts, cfg.crop)
        if not keep.any():
            raise NeuralFieldsError(f"--crop {list(cfg.crop)}: none of the {len(pts):,} points lies inside the crop box")
        pts, rgb = pts[keep], rgb[keep]
    if cfg.max_points is not None and len(pts) > cfg.max_points:
        pick = np.random.default_rng(cfg.seed).choice(len(pts), cfg.max_points, replace=False)
        pts, rgb = pts[pick], rgb[pick]
    return pts, (rgb * 255 + 0.5).astype(np.uint8)


def save_pointcloud(points: np.ndarray, colors: np.ndarray, out: str | Path) -> Path:
    """Binary PLY with per-vertex colours."""
    import trimesh

    out = Path(out)
    if out.suffix.lower() != ".ply":
        raise NeuralFieldsError(f"--out {out}: point clouds are written as .ply")
    out.parent.mkdir(parents=True, exist_ok=True)
    alpha = np.full((len(colors), 1), 255, dtype=np.uint8)
    trimesh.PointCloud(points, colors=np.concatenate([colors, alpha], 1)).export(out, file_type="ply")
    return out
