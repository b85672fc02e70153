"""``neuralfields process``: a folder of photos or a video -> a posed dataset (structure from motion)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..process import ProcessConfig, SfmOptions, process_capture
from ..process.pipeline import IMAGE_FORMATS
from ..process.sfm import CAMERA_MODELS, MATCHERS
from .common import positive_int


def register(sub) -> None:
    p = sub.add_parser("process", help="photos or a video -> posed dataset (structure from motion with pycolmap)",
                       description="Pose a capture with COLMAP's structure from motion (in-process, pycolmap) and write a "
                                   "dataset: images/ and images_{2,4,8}/, sparse/0 (the COLMAP model), transforms.json "
                                   "(instant-ngp / nerfstudio, normalised) and sparse_points.ply. Train on it with "
                                   "'neuralfields train --data DATASET'.")
    p.add_argument("input", type=Path, help="folder of photos (.jpg, .png, ...) or a video file (.mp4, .mov, ...)")
    p.add_argument("--output", type=Path, required=True, metavar="DATASET", help="dataset folder to write")
    p.add_argument("--frames", type=positive_int, default=150,
                   help="video: frames to keep, the sharpest of each of this many equal windows (default 150)")
    p.add_argument("--image-format", choices=IMAGE_FORMATS, default="jpg", help="video: format of the frames (default jpg)")
    p.add_argument("--matcher", choices=MATCHERS, default="auto",
                   help="image pairs to match: sequential (video, with loop closure), exhaustive (small photo sets); "
                        "auto picks sequential for videos and photo sets over 100 images (default auto)")
    p.add_argument("--camera-model", choices=CAMERA_MODELS, default="SIMPLE_RADIAL",
                   help="COLMAP camera model: SIMPLE_RADIAL (default; robust), OPENCV (fx, fy and k1 k2 p1 p2: large "
                        "images of wide or cheap lenses), PINHOLE (no distortion)")
    p.add_argument("--per-image-cameras", action="store_true",
                   help="calibrate every image separately (mixed cameras or zoom); default: one shared camera")
    p.add_argument("--max-image-size", type=positive_int, default=1600,
                   help="find features on images shrunk to this longest side (default 1600)")
    p.add_argument("--max-features", type=positive_int, default=8192, help="SIFT features per image (default 8192)")
    p.add_argument("--overlap", type=positive_int, default=10, help="sequential matcher: neighbours per frame (default 10)")
    p.add_argument("--aabb-scale", type=positive_int, help="instant-ngp aabb_scale (default 4 for objects, 16 for unbounded scenes)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the mapper")
    p.add_argument("--threads", type=int, default=-1,
                   help="threads of feature extraction, matching and mapping (default -1: all cores; "
                        "1 with --seed repeats a result exactly)")
    p.add_argument("--keep-database", action="store_true", help="keep colmap/ (feature database and every model) in the dataset")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder (only once the new one is complete)")
    p.add_argument("--verbose", action="store_true", help="show COLMAP's log")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    sfm = SfmOptions(matcher=args.matcher, camera_model=args.camera_model, shared_camera=not args.per_image_cameras,
                     max_image_size=args.max_image_size, max_features=args.max_features, overlap=args.overlap,
                     seed=args.seed, threads=args.threads, verbose=args.verbose)
    cfg = ProcessConfig(frames=args.frames, image_format=args.image_format, sfm=sfm, aabb_scale=args.aabb_scale,
                        keep_database=args.keep_database, overwrite=args.overwrite)
    result = process_capture(args.input, args.output, cfg, progress=not args.no_progress)
    c = result.counts
    print(f"registered {result.registered} of {result.n_images} images ({100 * result.registered / result.n_images:.0f}%); "
          f"{c['with_features']} with features, {c['pairs_verified']} of {c['pairs_matched']} pairs verified, "
          f"{c['points']} points, mean reprojection error {result.mean_reprojection_error:.2f} px; scene: {result.scene_kind}")
    stages = ", ".join(f"{name} {sec:.1f} s" for name, sec in result.seconds.items())
    print(f"time: {stages} (total {sum(result.seconds.values()):.1f} s)")
    print(f"dataset: {result.output} (train with: neuralfields train --data {result.output})")
    return 0
