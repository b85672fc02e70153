"""Images: pixels ``[H, W, C]`` at coordinates ``(x, y)`` (x along the width, y along the height).

Read through :mod:`neuralfields.fit.io` (8/16-bit through Pillow, EXR clipped and sRGB-encoded);
scored by PSNR and SSIM; written as ``reconstruction.png`` and ``comparison.png``
(target | reconstruction | error heat map).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...run.metrics import psnr, ssim
from ..io import collapse_grey, read_signal_image, resize_longest, save_image
from .base import ReadOptions, Signal, register_signal

ERROR_SCALE = 0.1  # absolute error shown at the top of the heat map's colour scale


def pixel_coords(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Pixel centres ``[H*W, 2]`` in ``[-1, 1]^2``, row-major, ``(x, y)`` order."""
    ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width * 2 - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2)


def error_heatmap(error: np.ndarray, scale: float = ERROR_SCALE) -> np.ndarray:
    """Absolute error ``[H, W]`` -> ``[H, W, 3]`` colours (black -> purple -> orange -> yellow at ``scale``)."""
    t = np.clip(error / scale, 0, 1)[..., None]
    stops = np.array([0.0, 0.35, 0.7, 1.0])
    colors = np.array([[0.0, 0.0, 0.02], [0.45, 0.05, 0.55], [0.95, 0.45, 0.1], [1.0, 1.0, 0.6]])
    return np.stack([np.interp(t[..., 0], stops, colors[:, k]) for k in range(3)], axis=-1).astype(np.float32)


def side_by_side(target: np.ndarray, recon: np.ndarray, scale: float = ERROR_SCALE) -> np.ndarray:
    """``target | reconstruction | error heat map`` as one ``[H, 3W + 8, 3]`` image."""
    def rgb(img: np.ndarray) -> np.ndarray:
        return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img

    error = np.abs(recon - target).mean(-1)
    gap = np.ones((target.shape[0], 4, 3), dtype=np.float32)
    return np.concatenate([rgb(target), gap, rgb(recon), gap, error_heatmap(error, scale)], axis=1)


@register_signal
class ImageSignal(Signal):
    """An image ``[H, W, C]`` (C = 1 or 3) in ``[0, 1]``."""

    kind = "image"
    suffixes = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".tga", ".exr")
    uses = frozenset({"size"})
    subsample_hint = "--size PIXELS resizes it to that many pixels on its longest side"

    @classmethod
    def read(cls, path: Path, options: ReadOptions) -> "ImageSignal":
        image = collapse_grey(read_signal_image(path))
        if options.size:
            image = resize_longest(image, options.size)
        return cls(image, str(path))

    def metrics(self, pred: Tensor) -> dict:
        image = pred.reshape(self.values.shape)
        return {"psnr": psnr(image, self.values), "ssim": ssim(image, self.values)}

    def write(self, pred: Tensor, out_dir: Path) -> dict[str, Path]:
        recon, target = self.reconstruction(pred), self.values.numpy()
        paths = {"reconstruction": out_dir / "reconstruction.png", "comparison": out_dir / "comparison.png"}
        save_image(paths["reconstruction"], recon)
        save_image(paths["comparison"], side_by_side(target, recon))
        return paths

    def record(self) -> dict:
        h, w = self.grid
        return {"kind": self.kind, "height": h, "width": w, "channels": self.out_dim, "error_heatmap_scale": ERROR_SCALE}

    def describe(self) -> str:
        h, w = self.grid
        c = self.out_dim
        return f"image: {self.source} ({w}x{h}, {c} channel{'s' if c > 1 else ''})"
