"""``process``: photos or a video in, a posed dataset out.

Stages: images (copy photos / pick video frames) -> features -> matching -> mapping -> writing
(``sparse/0``, downscaled copies, points, ``transforms.json``). Everything is written into a
hidden sibling folder ``.<name>.partial`` that is renamed to the dataset folder only when complete,
so a failure or an interrupt never leaves a dataset that looks finished; COLMAP's scratch files
(the feature database, all models found) live in its ``colmap/`` subfolder and are removed unless
``keep_database`` is set.

Registration: the largest model is kept. Fewer than ``MIN_REGISTERED`` images or fewer than
``MIN_REGISTERED_FRACTION`` of them is an error (the poses would cover too little of the
capture to be worth training on); fewer than ``WARN_REGISTERED_FRACTION`` is a warning.
"""

from __future__ import annotations

import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NeuralFieldsError, file_error
from .frames import copy_photos, extract_frames, find_photos, is_video
from .sfm import SfmOptions, SfmResult, run_sfm
from .write import write_dataset_files, write_downscales

MIN_REGISTERED = 3
MIN_REGISTERED_FRACTION = 0.3
WARN_REGISTERED_FRACTION = 0.8
IMAGE_FORMATS = ("jpg", "png")
_SCRATCH = "colmap"


@dataclass
class ProcessConfig:
    """Everything ``neuralfields process`` can be told."""

    frames: int = 150  # video: frames kept (the sharpest of each of this many windows)
    image_format: str = "jpg"  # video frames are written as jpg or png
    sfm: SfmOptions = field(default_factory=SfmOptions)
    downscales: tuple[int, ...] = (2, 4, 8)
    aabb_scale: int | None = None  # None: from the scene kind
    keep_database: bool = False  # keep colmap/ (database.db and every model) in the dataset
    overwrite: bool = False


@dataclass
class ProcessResult:
    output: Path
    n_images: int
    registered: int
    model_sizes: list[int]
    mean_reprojection_error: float
    scene_kind: str
    seconds: dict[str, float]
    counts: dict[str, int]


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise file_error(output, "output exists and is a file; choose a folder name")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise file_error(output, "output folder already exists and is not empty; pass --overwrite or choose another folder")


def _prepare_images(source: Path, image_dir: Path, cfg: ProcessConfig, progress: bool) -> tuple[list[str], bool]:
    """Fill ``image_dir`` from a photo folder or a video; returns (names, from_video)."""
    if not source.exists():
        raise file_error(source, "input does not exist (expected a folder of photos or a video file)")
    if source.is_dir():
        return copy_photos(find_photos(source), image_dir, progress), False
    if is_video(source):
        if cfg.image_format not in IMAGE_FORMATS:
            raise NeuralFieldsError(f"--image-format must be one of {', '.join(IMAGE_FORMATS)}, got '{cfg.image_format}'")
        return extract_frames(source, image_dir, cfg.frames, f".{cfg.image_format}", progress), True
    raise file_error(source, "not a folder of photos or a video file (known video types: .mp4, .mov, .avi, .mkv, .webm, ...)")


def _check_sizes(image_dir: Path, names: list[str], shared: bool) -> None:
    """One shared camera needs one image size."""
    if not shared:
        return
    from ..data.images import image_size

    sizes: dict[tuple[int, int], str] = {}
    for name in names:
        sizes.setdefault(image_size(image_dir / name), name)
        if len(sizes) > 1:
            (a, first), (b, other) = list(sizes.items())[:2]
            raise file_error(image_dir / other, f"is {b[0]}x{b[1]} but {first} is {a[0]}x{a[1]}; one shared camera needs "
                                                "one image size (pass --per-image-cameras for mixed cameras)")


def _judge_registration(sfm: SfmResult, n_images: int, source: Path) -> None:
    registered = sfm.model_sizes[0] if sfm.model_sizes else 0
    if registered < MIN_REGISTERED or registered < MIN_REGISTERED_FRACTION * n_images:
        if sfm.images_with_features < 2:
            found = f"only {sfm.images_with_features} of {n_images} images have SIFT features (blank or tiny images?)"
        else:
            others = f" in {len(sfm.model_sizes)} separate models" if len(sfm.model_sizes) > 1 else ""
            found = (f"structure from motion registered only {registered} of {n_images} images{others} "
                     f"({sfm.pairs_verified} of {sfm.pairs_matched} image pairs verified, {sfm.matcher} matcher)")
        raise file_error(source, f"{found}; the capture needs more overlap between views, more frames (--frames), "
                                 "larger images for features (--max-image-size), or another --matcher")
    if registered < WARN_REGISTERED_FRACTION * n_images:
        others = f" (other models: {', '.join(map(str, sfm.model_sizes[1:]))} images)" if len(sfm.model_sizes) > 1 else ""
        warnings.warn(f"{source}: only {registered} of {n_images} images registered ({100 * registered / n_images:.0f}%)"
                      f"{others}; the dataset covers part of the capture (more overlap or --frames may help)",
                      stacklevel=3)


def _publish(partial: Path, output: Path) -> None:
    """Move the finished ``partial`` folder to ``output`` (replacing an old one only now)."""
    old = None
    if output.is_dir():
        if any(output.iterdir()):
            old = output.with_name(f".{output.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            output.rename(old)
        else:
            output.rmdir()
    partial.rename(output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def process_capture(source: str | Path, output: str | Path, cfg: ProcessConfig | None = None,
                    progress: bool = True) -> ProcessResult:
    """Turn a folder of photos or a video into a posed dataset at ``output``.

    Raises:
        NeuralFieldsError: bad input (missing, empty, not images, unreadable video) or a capture
            that does not register; nothing is left at ``output`` then.
    """
    cfg = cfg or ProcessConfig()
    source, output = Path(source), Path(output)
    _check_output(output, cfg.overwrite)
    partial = output.with_name(f".{output.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    seconds: dict[str, float] = {}
    try:
        start = time.perf_counter()
        image_dir = partial / "images"
        names, from_video = _prepare_images(source, image_dir, cfg, progress)
        if len(names) < MIN_REGISTERED:
            raise file_error(source, f"only {len(names)} image{'s' if len(names) != 1 else ''}; structure from motion "
                                     f"needs at least {MIN_REGISTERED} overlapping views")
        _check_sizes(image_dir, names, cfg.sfm.shared_camera)
        seconds["frames" if from_video else "images"] = time.perf_counter() - start

        sfm = run_sfm(image_dir, names, partial / _SCRATCH, cfg.sfm, from_video, progress)
        seconds.update(sfm.seconds)
        _judge_registration(sfm, len(names), source)

        start = time.perf_counter()
        model_dir = partial / "sparse" / "0"
        model_dir.mkdir(parents=True)
        sfm.reconstruction.write(str(model_dir))
        write_downscales(partial, names, cfg.downscales, progress)
        if not cfg.keep_database:
            shutil.rmtree(partial / _SCRATCH)
        meta = write_dataset_files(partial, model_dir, cfg.aabb_scale)
        seconds["writing"] = time.perf_counter() - start
        _publish(partial, output)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    counts = {"images": len(names), "with_features": sfm.images_with_features, "pairs_matched": sfm.pairs_matched,
              "pairs_verified": sfm.pairs_verified, "registered": sfm.model_sizes[0],
              "points": int(sfm.reconstruction.num_points3D())}
    return ProcessResult(output, len(names), sfm.model_sizes[0], sfm.model_sizes,
                         float(sfm.reconstruction.compute_mean_reprojection_error()), meta["scene_kind"], seconds, counts)
