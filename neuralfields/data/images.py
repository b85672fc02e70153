"""Reading images from disk, with one-line errors naming the file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import file_error

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".PNG", ".JPG", ".JPEG")


def resolve_image_path(root: Path, file_path: str) -> Path:
    """The image a ``file_path`` entry refers to; Blender-style entries omit the extension."""
    path = (root / file_path).resolve() if not Path(file_path).is_absolute() else Path(file_path)
    if path.suffix and path.exists():
        return path
    for suffix in IMAGE_SUFFIXES:
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            return candidate
    return path


def read_image(path: Path, downscale: float = 1.0) -> np.ndarray:
    """Read an 8-bit image as ``[H, W, C]`` uint8 (C = 3 or 4), resized by ``1/downscale``.

    EXR and other float formats go through :func:`read_float_image` instead.
    """
    try:
        with Image.open(path) as img:
            full_size = img.size
            if downscale > 1 and img.format == "JPEG":
                # JPEG can decode at 1/2, 1/4, 1/8 size directly: much faster for big photos.
                img.draft("RGB", (int(img.width / downscale), int(img.height / downscale)))
            img = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P", "PA") and _has_alpha(img) else "RGB")
            if downscale != 1:
                size = _scaled_size(full_size, downscale)
                if img.size != size:
                    img = img.resize(size, Image.Resampling.BOX if downscale == int(downscale) else Image.Resampling.LANCZOS)
            return np.asarray(img).copy()
    except FileNotFoundError:
        raise file_error(path, "image file not found") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise file_error(path, f"cannot read image ({exc})") from None


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _scaled_size(size: tuple[int, int], downscale: float) -> tuple[int, int]:
    return max(1, round(size[0] / downscale)), max(1, round(size[1] / downscale))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError:
        raise file_error(path, "image file not found") from None
    except (OSError, ValueError) as exc:
        raise file_error(path, f"cannot read image ({exc})") from None


def read_images(paths: list[Path], downscale: float = 1.0, workers: int = 4) -> list[np.ndarray]:
    """Read many images in parallel threads (decoding releases the GIL)."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda p: read_image(p, downscale), paths))
