"""The images a capture starts from: photos copied from a folder, or sharp frames picked from a video.

Photos keep their names. JPEG and PNG files are copied byte for byte unless their EXIF orientation
asks for a rotation; those (and other formats PIL reads: BMP, TIFF, WebP) are re-encoded upright,
so every later reader (COLMAP, the loaders) sees the same pixels. Files with an image suffix that
cannot be decoded are skipped with one warning that counts them.

Videos are decoded once with imageio's ffmpeg plugin. The frames are split into ``n`` equal
windows and the sharpest frame of each window (highest variance of the Laplacian, a standard
blur measure) is written as ``frame_00001.jpg`` ... in temporal order.
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from ..errors import file_error

COPY_SUFFIXES = {".jpg", ".jpeg", ".png"}  # written as they are
CONVERT_SUFFIXES = {".bmp", ".tif", ".tiff", ".webp"}  # re-encoded as PNG
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
_ORIENTATION_TAG = 0x0112
_SHARPNESS_SIDE = 512  # blur is measured on a copy subsampled to about this longest side


def natural_key(name: str) -> list:
    """Sort key that orders ``frame2`` before ``frame10`` (photo and frame numbers are unpadded)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def find_photos(folder: Path) -> list[Path]:
    """The photos directly in ``folder`` in natural name order; one-line errors when there are none."""
    entries = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    if not entries:
        raise file_error(folder, "the folder is empty (expected photos: .jpg, .png, ...)")
    photos = [p for p in entries if p.suffix.lower() in COPY_SUFFIXES | CONVERT_SUFFIXES]
    if not photos:
        kinds = ", ".join(sorted({p.suffix.lower() or "no suffix" for p in entries})[:5])
        raise file_error(folder, f"no photos here (expected .jpg, .png, .bmp, .tif or .webp files; found {len(entries)} "
                                 f"other file{'s' if len(entries) > 1 else ''}: {kinds})")
    return sorted(photos, key=lambda p: natural_key(p.name))


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_ORIENTATION_TAG, 1))
    except (ValueError, TypeError, OSError):
        return 1


def copy_photos(photos: list[Path], out_dir: Path, progress: bool = True) -> list[str]:
    """Copy (or re-encode upright) ``photos`` into ``out_dir``; returns the written names in order.

    Raises:
        NeuralFieldsError: when none of the photos can be decoded.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    names, bad = [], []
    for path in tqdm(photos, desc="photos", unit="img", disable=not progress, leave=False):
        try:
            with Image.open(path) as img:
                img.load()  # decodes: a truncated file fails here, not inside COLMAP
                turned = _orientation(img) != 1
                if path.suffix.lower() in COPY_SUFFIXES and not turned:
                    name = path.name
                    shutil.copyfile(path, out_dir / name)
                else:
                    upright = ImageOps.exif_transpose(img).convert("RGB")
                    name = path.name if path.suffix.lower() in COPY_SUFFIXES else path.stem + ".png"
                    upright.save(out_dir / name, quality=95)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            bad.append(path)
            continue
        names.append(name)
    if bad and not names:
        raise file_error(photos[0].parent, f"none of the {len(photos)} photos can be decoded (first: {bad[0].name})")
    if bad:
        warnings.warn(f"{photos[0].parent}: skipped {len(bad)} of {len(photos)} photos that cannot be decoded "
                      f"(first: {bad[0].name})", stacklevel=2)
    if len(set(names)) != len(names):
        raise file_error(photos[0].parent, "two photos differ only by suffix (e.g. a.bmp and a.png); rename one")
    return names


def sharpness(frame: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image (higher is sharper)."""
    step = max(1, max(frame.shape[:2]) // _SHARPNESS_SIDE)
    grey = frame[::step, ::step, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def _open_video(path: Path):
    """imageio reader and frame count; one-line errors for files ffmpeg cannot decode."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise file_error(path, "reading videos needs imageio and imageio-ffmpeg (pip install 'neuralfields[video]')") from None
    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
        count = reader.count_frames()
    except Exception as exc:  # imageio raises OSError, RuntimeError or IndexError depending on the damage
        raise file_error(path, f"cannot read video ({_first_line(exc)})") from None
    if count <= 0:
        reader.close()
        raise file_error(path, "video has no frames")
    return reader, count


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(exc).__name__


def extract_frames(video: Path, out_dir: Path, n: int = 150, suffix: str = ".jpg", progress: bool = True) -> list[str]:
    """Write the sharpest frame of each of ``n`` equal windows of ``video`` into ``out_dir``.

    Returns the written names in temporal order. Only the current window's best frame is kept in
    memory, so long videos stream through.
    """
    reader, total = _open_video(video)
    keep = min(n, total)
    out_dir.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    best: tuple[float, np.ndarray] | None = None
    window = 0

    def flush() -> None:
        name = f"frame_{len(names) + 1:05d}{suffix}"
        Image.fromarray(best[1][..., :3]).save(out_dir / name, quality=95)
        names.append(name)

    bar = tqdm(total=total, desc="frames", unit="frame", disable=not progress, leave=False)
    try:
        for i, frame in enumerate(reader):
            if i >= total:
                break
            w = i * keep // total
            if w != window and best is not None:
                flush()
                best, window = None, w
            score = sharpness(frame)
            if best is None or score > best[0]:
                best = (score, np.asarray(frame))
            bar.update(1)
            bar.set_postfix(kept=len(names))
    except Exception as exc:
        if not names and best is None:
            raise file_error(video, f"cannot decode video frames ({_first_line(exc)})") from None
        # A damaged tail: keep what decoded.
        warnings.warn(f"{video}: stopped decoding at frame {bar.n} of {total} ({_first_line(exc)})", stacklevel=2)
    finally:
        reader.close()
        bar.close()
    if best is not None:
        flush()
    return names
