"""Structure from motion in-process with pycolmap: SIFT features, matching, incremental mapping.

pycolmap reports no progress for feature extraction and matching, so both run in small batches
(images for extraction; image pairs, generated here, for matching) and a bar advances after
each. The pair lists follow COLMAP's matchers:

* ``exhaustive``: every pair (photo sets of up to ~100 images);
* ``sequential``: each frame with its ``overlap`` successors, plus frames ``2^k`` apart
  (COLMAP's quadratic overlap), plus loop closure: every keyframe (each ``overlap // 2``-th
  frame) with every other keyframe, so a video that returns to where it started closes the loop
  without a vocabulary tree (which COLMAP would have to download).

Mapping uses ``pycolmap.incremental_mapping`` (incremental registration with local and global
bundle adjustment); its per-image callback drives the last bar. Feature extraction and matching
are forced onto the CPU so results do not depend on the machine.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from ..errors import NeuralFieldsError

CAMERA_MODELS = ("SIMPLE_RADIAL", "OPENCV", "PINHOLE")
MATCHERS = ("auto", "sequential", "exhaustive")
EXHAUSTIVE_LIMIT = 100  # auto: photo sets up to this size are matched exhaustively
_FEATURE_BATCH = 8  # images per extraction call
_PAIR_BATCH = 256  # image pairs per matching call


@dataclass
class SfmOptions:
    """What the user can choose about structure from motion."""

    matcher: str = "auto"
    camera_model: str = "SIMPLE_RADIAL"  # COLMAP's default; OPENCV's extra terms fail on small images
    shared_camera: bool = True  # one camera for all images (one physical camera and zoom)
    max_image_size: int = 1600  # features are found on images shrunk to this longest side
    max_features: int = 8192
    overlap: int = 10  # sequential matcher: successors matched with each frame
    seed: int = 0
    threads: int = -1  # -1: all cores
    verbose: bool = False  # show COLMAP's own log


@dataclass
class SfmResult:
    """The largest reconstruction and what each stage did."""

    reconstruction: object | None  # pycolmap.Reconstruction; None when nothing registered
    model_sizes: list[int]  # registered images of every model found, largest first
    images_with_features: int
    pairs_matched: int
    pairs_verified: int
    seconds: dict[str, float] = field(default_factory=dict)
    matcher: str = "exhaustive"


def _pycolmap():
    try:
        import pycolmap
    except ImportError:
        raise NeuralFieldsError("structure from motion needs pycolmap (pip install 'neuralfields[process]')") from None
    return pycolmap


def choose_matcher(matcher: str, n_images: int, from_video: bool) -> str:
    """``auto``: sequential for video frames and large photo sets, exhaustive otherwise."""
    if matcher not in MATCHERS:
        raise NeuralFieldsError(f"--matcher must be one of {', '.join(MATCHERS)}, got '{matcher}'")
    if matcher != "auto":
        return matcher
    return "sequential" if from_video or n_images > EXHAUSTIVE_LIMIT else "exhaustive"


def exhaustive_pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def sequential_pairs(n: int, overlap: int = 10, loop_closure: bool = True) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of an ordered sequence: neighbours, powers of two, keyframe loops."""
    pairs = set()
    for i in range(n):
        for k in range(1, overlap + 1):
            if i + k < n:
                pairs.add((i, i + k))
        step = 1
        while i + step < n:  # quadratic overlap: 1, 2, 4, 8, ... frames ahead
            pairs.add((i, i + step))
            step *= 2
    if loop_closure:
        keys = list(range(0, n, max(1, overlap // 2)))
        pairs.update((a, b) for ai, a in enumerate(keys) for b in keys[ai + 1:])
    return sorted(pairs)


@contextlib.contextmanager
def colmap_log(verbose: bool) -> Iterator[None]:
    """Silence COLMAP's log below errors (the bars report progress) unless ``verbose``."""
    logging = _pycolmap().logging
    previous = logging.minloglevel
    logging.minloglevel = 0 if verbose else 2
    try:
        yield
    finally:
        logging.minloglevel = previous


def _timed(seconds: dict[str, float], name: str):
    import time

    @contextlib.contextmanager
    def timer():
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds[name] = time.perf_counter() - start

    return timer()


def extract_features(database: Path, image_dir: Path, names: list[str], opts: SfmOptions, progress: bool = True) -> int:
    """SIFT features of ``names`` into ``database``; returns how many images got features."""
    pycolmap = _pycolmap()
    if opts.camera_model not in CAMERA_MODELS:
        raise NeuralFieldsError(f"--camera-model must be one of {', '.join(CAMERA_MODELS)}, got '{opts.camera_model}'")
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = opts.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = opts.max_image_size
    extraction.num_threads = opts.threads
    extraction.use_gpu = False
    extraction.sift.max_num_features = opts.max_features
    mode = pycolmap.CameraMode.SINGLE if opts.shared_camera else pycolmap.CameraMode.PER_IMAGE
    bar = tqdm(total=len(names), desc="features", unit="img", disable=not progress)
    with bar:
        for start in range(0, len(names), _FEATURE_BATCH):
            batch = names[start:start + _FEATURE_BATCH]
            pycolmap.extract_features(database, image_dir, image_names=batch, camera_mode=mode, reader_options=reader,
                                      extraction_options=extraction, device=pycolmap.Device.cpu)
            if opts.shared_camera and reader.existing_camera_id < 0:
                # Later batches reuse the first batch's camera instead of making one per call.
                with pycolmap.Database.open(database) as db:
                    cameras = db.read_all_cameras()
                if cameras:
                    reader.existing_camera_id = cameras[0].camera_id
            bar.update(len(batch))
        with pycolmap.Database.open(database) as db:
            found = sum(1 for image in db.read_all_images() if db.num_keypoints_for_image(image.image_id) > 0)
        bar.set_postfix(with_features=found)
    return found


def match(database: Path, names: list[str], pairs: list[tuple[int, int]], work_dir: Path, opts: SfmOptions,
          progress: bool = True) -> tuple[int, int]:
    """Match and geometrically verify ``pairs`` (indices into ``names``); returns (matched, verified) pairs."""
    pycolmap = _pycolmap()
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = opts.threads
    matching.use_gpu = False
    pair_file = work_dir / "pairs.txt"
    bar = tqdm(total=len(pairs), desc="matching", unit="pair", disable=not progress)
    with bar:
        for start in range(0, len(pairs), _PAIR_BATCH):
            batch = pairs[start:start + _PAIR_BATCH]
            pair_file.write_text("".join(f"{names[i]} {names[j]}\n" for i, j in batch))
            pairing = pycolmap.ImportedPairingOptions()
            pairing.match_list_path = pair_file
            pycolmap.match_image_pairs(database, matching_options=matching, pairing_options=pairing,
                                       device=pycolmap.Device.cpu)
            bar.update(len(batch))
            verified = _verified_pairs(database)
            bar.set_postfix(verified=verified)
    pair_file.unlink(missing_ok=True)
    return len(pairs), verified


def _verified_pairs(database: Path) -> int:
    """Image pairs whose matches passed geometric verification (with at least one inlier)."""
    with _pycolmap().Database.open(database) as db:
        _, inliers = db.read_two_view_geometry_num_inliers()
    return sum(1 for n in inliers if n > 0)


def incremental_map(database: Path, image_dir: Path, out_dir: Path, n_images: int, opts: SfmOptions,
                    progress: bool = True) -> list:
    """Reconstructions found by incremental mapping, largest first (empty when nothing registers)."""
    pycolmap = _pycolmap()
    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = opts.threads
    options.random_seed = opts.seed
    options.extract_colors = True
    bar = tqdm(total=n_images, desc="mapping", unit="img", disable=not progress)
    with bar:
        models = pycolmap.incremental_mapping(database, image_dir, out_dir, options,
                                              next_image_callback=lambda: bar.update(1))
        ranked = sorted(models.values(), key=lambda r: r.num_reg_images(), reverse=True)
        bar.n = ranked[0].num_reg_images() if ranked else 0
        bar.set_postfix(registered=bar.n, models=len(ranked))
        bar.refresh()
    return ranked


def run_sfm(image_dir: Path, names: list[str], work_dir: Path, opts: SfmOptions, from_video: bool,
            progress: bool = True) -> SfmResult:
    """Features, matching and mapping of the images ``names`` in ``image_dir``; scratch files in ``work_dir``.

    Never judges the outcome: with too few features or no initial pair the result has no
    reconstruction and empty ``model_sizes`` (the caller words the error for its input).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "database.db"
    database.unlink(missing_ok=True)
    _pycolmap().set_random_seed(opts.seed)  # RANSAC in matching and mapping draws from COLMAP's global generator
    matcher = choose_matcher(opts.matcher, len(names), from_video)
    pairs = exhaustive_pairs(len(names)) if matcher == "exhaustive" else sequential_pairs(len(names), opts.overlap)
    seconds: dict[str, float] = {}
    matched = verified = 0
    ranked: list = []
    with colmap_log(opts.verbose):
        with _timed(seconds, "features"):
            found = extract_features(database, image_dir, names, opts, progress)
        if found >= 2:
            with _timed(seconds, "matching"):
                matched, verified = match(database, names, pairs, work_dir, opts, progress)
        if verified:
            with _timed(seconds, "mapping"):
                models_dir = work_dir / "models"
                models_dir.mkdir(exist_ok=True)
                ranked = incremental_map(database, image_dir, models_dir, len(names), opts, progress)
    return SfmResult(ranked[0] if ranked else None, [r.num_reg_images() for r in ranked], found, matched, verified,
                     seconds, matcher)
