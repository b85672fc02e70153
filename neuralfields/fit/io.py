"""Reading 2D signals to fit: 8/16-bit images through Pillow, float EXR through OpenEXR.

Every reader returns ``[H, W, C]`` float32 in ``[0, 1]`` with ``C`` = 1 (grey) or 3 (colour);
alpha is dropped. EXR files hold linear, possibly high-dynamic-range radiance: we clip to
``[0, 1]`` and apply the sRGB transfer curve, so the fitted image is what a viewer displays and
PSNR is measured in display space like for PNGs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import file_error

EXR_SUFFIXES = {".exr"}


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB encoding of linear values in ``[0, 1]``."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055).astype(np.float32)


def read_exr(path: Path) -> np.ndarray:
    """Linear EXR -> display-referred ``[H, W, C]`` in ``[0, 1]`` (clip, then sRGB curve)."""
    try:
        import OpenEXR
    except ImportError:
        raise file_error(path, "reading EXR needs the OpenEXR package (pip install 'neuralfields[images]')") from None
    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            channels = {name: np.asarray(ch.pixels, dtype=np.float32) for name, ch in exr.channels().items()}
    except Exception as exc:  # the binding raises plain RuntimeError/OSError for bad files
        raise file_error(path, f"cannot read EXR ({exc})") from None
    if all(c in channels for c in "RGB"):
        linear = np.stack([channels[c] for c in "RGB"], axis=-1)
    elif "Y" in channels:
        linear = channels["Y"][..., None]
    else:
        raise file_error(path, f"EXR has no R,G,B or Y channels (found {sorted(channels)})")
    return linear_to_srgb(linear)


def read_ldr(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(img, dtype=np.float32)
                return np.clip(array / (65535.0 if array.max() > 255 else 255.0), 0, 1)[..., None]
            if img.mode in ("L", "LA", "1"):
                return np.asarray(img.convert("L"), dtype=np.float32)[..., None] / 255.0
            if img.mode == "F":
                return np.clip(np.asarray(img, dtype=np.float32), 0, 1)[..., None]
            return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise file_error(path, "image file not found") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise file_error(path, f"cannot read image ({exc})") from None


def read_signal_image(path: str | Path) -> np.ndarray:
    """Read an image file to fit as ``[H, W, C]`` float32 in ``[0, 1]`` (C = 1 or 3)."""
    path = Path(path)
    if not path.exists():
        raise file_error(path, "image file not found")
    if path.is_dir():
        raise file_error(path, "expected an image file, got a folder")
    image = read_exr(path) if path.suffix.lower() in EXR_SUFFIXES else read_ldr(path)
    if image.ndim != 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise file_error(path, f"image too small to fit ({image.shape[1]}x{image.shape[0]})")
    return image


def collapse_grey(image: np.ndarray) -> np.ndarray:
    """Colour images whose three channels are identical become one-channel grey images."""
    if image.shape[-1] == 3 and np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]):
        return image[..., :1]
    return image


def resize_longest(image: np.ndarray, size: int) -> np.ndarray:
    """Area-resize so the longest side is ``size`` pixels (no-op when already that small)."""
    h, w = image.shape[:2]
    if max(h, w) <= size:
        return image
    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    channels = [np.asarray(Image.fromarray(image[..., c]).resize(new, Image.Resampling.BOX)) for c in range(image.shape[-1])]
    return np.stack(channels, axis=-1).astype(np.float32)


def save_image(path: str | Path, image: np.ndarray) -> None:
    """Write ``[H, W, C]`` floats in ``[0, 1]`` as an 8-bit PNG (C = 1 or 3)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
