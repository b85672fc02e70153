"""Colour maps for scalar images (depth, opacity) and the legend strip drawn on depth frames.

Maps are piecewise-linear through a handful of anchor colours (close approximations of the
well-known perceptual maps; no plotting library needed). Values are normalised to [0, 1]
by the caller; 0 takes the first anchor.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# name -> anchor colours evenly spaced over [0, 1]
COLORMAPS: dict[str, np.ndarray] = {
    "turbo": np.array([
        (0.190, 0.072, 0.232), (0.276, 0.384, 0.857), (0.158, 0.651, 0.991), (0.094, 0.870, 0.784),
        (0.353, 0.984, 0.451), (0.640, 0.991, 0.233), (0.897, 0.870, 0.212), (0.996, 0.647, 0.153),
        (0.940, 0.390, 0.070), (0.773, 0.161, 0.013), (0.480, 0.016, 0.011),
    ]),
    "viridis": np.array([
        (0.267, 0.005, 0.329), (0.283, 0.141, 0.458), (0.254, 0.265, 0.530), (0.207, 0.372, 0.553),
        (0.164, 0.471, 0.558), (0.128, 0.567, 0.551), (0.135, 0.659, 0.518), (0.267, 0.749, 0.441),
        (0.478, 0.821, 0.318), (0.741, 0.873, 0.150), (0.993, 0.906, 0.144),
    ]),
    "gray": np.array([(0.0, 0.0, 0.0), (1.0, 1.0, 1.0)]),
}


def apply_colormap(values: np.ndarray, name: str = "turbo") -> np.ndarray:
    """``[...]`` values in [0, 1] (clipped) -> ``[..., 3]`` float32 colours."""
    anchors = COLORMAPS[name]
    x = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * (len(anchors) - 1)
    lo = np.minimum(np.floor(x).astype(np.int64), len(anchors) - 2)
    frac = (x - lo)[..., None]
    return (anchors[lo] * (1 - frac) + anchors[lo + 1] * frac).astype(np.float32)


def format_value(v: float) -> str:
    return f"{v:.3g}"


def draw_legend(image: np.ndarray, lo: float, hi: float, name: str = "turbo", label: str = "depth") -> np.ndarray:
    """Overlay a colour bar with its ``lo``/``hi`` labels along the bottom of ``[H, W, 3]`` uint8.

    Frames below 96 pixels on a side are returned unchanged: the strip would hide most of the
    image (the range is always written to the render's JSON as well).
    """
    h, w = image.shape[:2]
    if h < 96 or w < 96:
        return image
    bar_h = max(6, h // 40)
    margin = max(4, w // 50)
    font = ImageFont.load_default()
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    left, right = format_value(lo), format_value(hi)
    text_h = draw.textbbox((0, 0), "0", font=font)[3] + 2
    top = h - margin - bar_h - text_h
    # A dark backing keeps labels legible over any content.
    draw.rectangle([margin - 2, top - 2, w - margin + 1, h - margin + 1], fill=(0, 0, 0))
    ramp = apply_colormap(np.linspace(0, 1, w - 2 * margin), name)
    strip = (np.repeat(ramp[None], bar_h, 0) * 255 + 0.5).astype(np.uint8)
    pil.paste(Image.fromarray(strip), (margin, h - margin - bar_h))
    draw.text((margin, top), left, fill=(255, 255, 255), font=font)
    cw = draw.textlength(label, font=font)
    draw.text(((w - cw) / 2, top), label, fill=(255, 255, 255), font=font)
    rw = draw.textlength(right, font=font)
    draw.text((w - margin - rw, top), right, fill=(255, 255, 255), font=font)
    return np.asarray(pil)
