"""``neuralfields process``: photos or a video -> posed dataset with pycolmap.

Runtime is kept low: the demo video is 48 frames of 160x160 (about 10 s of structure from
motion) and trains for 200 steps; the cup capture (real photos, only when the shared data is
there) runs with features at 400 px, where all 77 photos register in about 20 s (at 200x150
pycolmap splits the capture into several small models).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("pycolmap")
pytest.importorskip("imageio_ffmpeg")

from neuralfields.cli import main  # noqa: E402
from neuralfields.data import load_scene  # noqa: E402
from neuralfields.data.colmap_model import colmap_to_c2w, read_model  # noqa: E402
from neuralfields.data.normalize import transform_points, umeyama  # noqa: E402
from neuralfields.data.ply import read_ply_points  # noqa: E402
from neuralfields.process.frames import extract_frames  # noqa: E402
from neuralfields.process.sfm import exhaustive_pairs, sequential_pairs  # noqa: E402
from neuralfields.process.write import read_capture  # noqa: E402

VIDEO_FRAMES = 48
VIDEO_SIZE = 160
# Measured: 200 steps on the processed demo video reach 18.9 dB test PSNR (two seeds, 18.89 and 18.94;
# 400 steps reach 21.1 dB); a flat image of the mean colour scores 10.3 dB. The bar leaves room for
# run-to-run noise in structure from motion and training.
VIDEO_PSNR_BAR = 17.0
TINY_TRAIN = ['field.options={"n_levels":8,"n_features":2,"log2_table":14,"max_res":256}',
              "render.grid_resolution=32", "render.samples_per_diagonal=128", "train.target_samples=16384",
              "train.init_rays=1024", "train.max_rays=2048", "train.grid_warmup_steps=64", "train.eval_every=0",
              "train.checkpoint_every=1000"]


def alignment_error(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distances ``[N]`` between camera centres after the best similarity (Umeyama), relative to the
    RMS spread of the reference centres."""
    moved = transform_points(ours, umeyama(ours, reference))
    spread = np.sqrt(((reference - reference.mean(0)) ** 2).sum(1).mean())
    return np.linalg.norm(moved - reference, axis=1) / spread


def process(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["process", *map(str, args), "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


# ----------------------------------------------------------------------------- pieces


def test_pair_lists():
    assert len(exhaustive_pairs(5)) == 10
    pairs = set(sequential_pairs(60, overlap=10))
    assert all(i < j for i, j in pairs)
    assert {(0, 1), (0, 10), (0, 16), (0, 32)} <= pairs  # neighbours and quadratic overlap
    assert (5, 55) in pairs and (0, 55) in pairs  # keyframes every 5 frames close the loop
    assert (1, 58) not in pairs


def test_video_keeps_the_sharpest_frame_of_each_window(tmp_path):
    from neuralfields.export.video import write_video

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    sharp = np.asarray(Image.fromarray(texture).resize((64, 64), Image.Resampling.NEAREST))
    blurred = np.asarray(Image.fromarray(texture).resize((8, 8), Image.Resampling.BOX).resize((64, 64), Image.Resampling.BILINEAR))
    # 4 windows of 3 frames; the sharp frame sits at a different place in each, marked by brightness.
    frames, sharp_at = [], [0, 2, 1, 2]
    for w, pos in enumerate(sharp_at):
        for k in range(3):
            base = sharp if k == pos else blurred
            frames.append(np.clip(base.astype(int) // 2 + 40 * w, 0, 255).astype(np.uint8))
    video = write_video(frames, tmp_path / "clip.mp4", fps=10)
    names = extract_frames(video, tmp_path / "out", n=4, progress=False)
    assert names == [f"frame_{i:05d}.jpg" for i in range(1, 5)]
    for w, name in enumerate(names):
        got = np.asarray(Image.open(tmp_path / "out" / name)).astype(float)
        errors = [np.abs(got - frames[3 * w + k]).mean() for k in range(3)]
        assert int(np.argmin(errors)) == sharp_at[w]


# ----------------------------------------------------------------------------- bad input


def _noise_images(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _make_bad(kind: str, tmp: Path) -> Path:
    if kind == "missing":
        return tmp / "nowhere"
    if kind == "empty":
        (tmp / "empty").mkdir()
        return tmp / "empty"
    if kind == "not-images":
        (tmp / "notes").mkdir()
        for name in ("a.txt", "b.csv"):
            (tmp / "notes" / name).write_text("not an image\n")
        return tmp / "notes"
    if kind == "corrupt-video":
        (tmp / "clip.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
        return tmp / "clip.mp4"
    return _noise_images(tmp / "noise")


@pytest.mark.parametrize("kind, words", [
    ("missing", "does not exist"),
    ("empty", "empty"),
    ("not-images", "no photos"),
    ("corrupt-video", "cannot read video"),
    ("unregistrable", "registered only"),
])
def test_bad_input_is_one_line_error(tmp_path, capsys, kind, words):
    source = _make_bad(kind, tmp_path)
    code, _, err = process(capsys, source, "--output", tmp_path / "dataset")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"error: {source}") and words in lines[0], err
    assert not (tmp_path / "dataset").exists()
    assert not (tmp_path / ".dataset.partial").exists()  # no half dataset left behind


def test_refuses_to_overwrite_a_dataset(tmp_path, capsys):
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "transforms.json").write_text("{}")
    code, _, err = process(capsys, _noise_images(tmp_path / "noise"), "--output", out)
    assert code == 2 and "--overwrite" in err
    assert (out / "transforms.json").read_text() == "{}"


# ----------------------------------------------------------------------------- demo video


def orbit_cameras(n: int, size: int):
    """``n`` cameras circling the demo scene once, bobbing between 20 and 50 degrees of elevation."""
    from neuralfields.cameras import Cameras, fov_to_focal, look_at
    from neuralfields.data.demo import CAMERA_RADIUS, DemoScene, demo_fov

    scene = DemoScene()
    t = np.arange(n) / n
    azimuth, elevation = 2 * math.pi * t, np.radians(35 + 15 * np.sin(2 * math.pi * t))
    dirs = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], -1)
    eye = scene.centre + CAMERA_RADIUS * torch.tensor(dirs, dtype=torch.float32)
    c2w = look_at(eye, scene.centre.expand_as(eye), torch.tensor([0.0, 0.0, 1.0]))
    focal = fov_to_focal(demo_fov(scene), size)
    return scene, Cameras.create(c2w, focal, focal, size / 2, size / 2, size, size)


@pytest.fixture(scope="module")
def demo_video(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """An mp4 orbit of the demo scene over white, and the true camera centres ``[N, 3]``."""
    from neuralfields.export.video import write_video
    from neuralfields.threads import torch_threads

    scene, cams = orbit_cameras(VIDEO_FRAMES, VIDEO_SIZE)
    frames = []
    with torch_threads(1):
        for i in range(VIDEO_FRAMES):
            rgba = scene.render(cams, i, supersample=2)
            rgb = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
            frames.append((rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    video = write_video(frames, tmp_path_factory.mktemp("video") / "orbit.mp4", fps=24)
    return video, cams.c2w[:, :3, 3].numpy().astype(np.float64)


@pytest.fixture(scope="module")
def video_dataset(demo_video, tmp_path_factory) -> tuple[Path, str]:
    video, _ = demo_video
    out = tmp_path_factory.mktemp("processed") / "orbit"
    # One frame per window: frame k of the dataset is frame k of the video, whose pose is known.
    code = main(["process", str(video), "--output", str(out), "--frames", str(VIDEO_FRAMES), "--no-progress",
                 "--threads", "1"])  # one thread: the same poses on every run
    assert code == 0
    return out


def test_video_poses_match_the_truth(video_dataset, demo_video):
    _, truth = demo_video
    capture = read_capture(video_dataset / "sparse" / "0")
    assert len(capture.names) >= 0.9 * VIDEO_FRAMES
    index = [int(name[len("frame_"):-len(".jpg")]) - 1 for name in capture.names]
    error = alignment_error(capture.c2w[:, :3, 3], truth[index])
    # Measured with one thread (repeats exactly): mean 0.036, max 0.093 of the orbit's spread; with
    # all threads runs vary (a mean of 0.073 was seen). At 160 px and a 40-degree field of view the
    # focal length and the orbit radius trade off (SfM finds a focal length 13% short), which bends
    # the recovered orbit slightly; the field trains on these poses all the same.
    assert error.mean() < 0.07 and error.max() < 0.15, error
    meta = json.loads((video_dataset / "transforms.json").read_text())
    true_focal = float(orbit_cameras(1, VIDEO_SIZE)[1].fx[0])
    # The same trade-off moves the focal length between runs of multi-threaded matching: measured
    # 12% and 26% short. A pixel-scale mistake (a downscale applied twice) would be 50% off or more.
    assert abs(meta["fl_x"] / true_focal - 1) < 0.35


def test_video_dataset_layout(video_dataset):
    meta = json.loads((video_dataset / "transforms.json").read_text())
    assert meta["camera_model"] == "OPENCV" and meta["w"] == meta["h"] == VIDEO_SIZE
    assert all(k in meta for k in ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2", "aabb_scale", "applied_transform"))
    assert meta["scene_kind"] == "object" and set(meta["normalization"]) == {"scale", "rotation", "translation", "box"}
    centres = np.array([f["transform_matrix"] for f in meta["frames"]])[:, :3, 3]
    assert np.abs(centres).max() <= meta["normalization"]["box"] + 1e-6
    # applied_transform takes COLMAP's (unnormalised) camera centres to the file's.
    capture = read_capture(video_dataset / "sparse" / "0")
    applied = np.vstack([np.array(meta["applied_transform"]), [0, 0, 0, 1]])
    assert np.allclose(transform_points(capture.c2w[:, :3, 3], applied), centres, atol=1e-6)
    points = read_ply_points(video_dataset / meta["ply_file_path"])
    assert len(points) == len(capture.points) > 100
    for factor in (2, 4, 8):
        first = video_dataset / f"images_{factor}" / Path(meta["frames"][0]["file_path"]).name
        assert Image.open(first).size == (VIDEO_SIZE // factor, VIDEO_SIZE // factor)
    assert not any(p.name.startswith(".") for p in video_dataset.parent.iterdir())  # no partial folder left


def test_nerfstudio_and_ngp_readers_agree(video_dataset):
    ns = load_scene(video_dataset, "all", format="nerfstudio")
    ngp = load_scene(video_dataset, "all", format="ngp")
    assert len(ns) == len(ngp) == len(json.loads((video_dataset / "transforms.json").read_text())["frames"])
    for name in ("c2w", "fx", "fy", "cx", "cy", "width", "height", "distortion"):
        a, b = getattr(ns.cameras, name), getattr(ngp.cameras, name)
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name
    colmap = load_scene(video_dataset, "all", format="colmap")  # sparse/0 reads as a COLMAP dataset too
    assert len(colmap) == len(ns)


def test_video_process_train_eval(video_dataset, tmp_path, capsys, one_thread):
    run = tmp_path / "run"
    sets = [arg for item in TINY_TRAIN for arg in ("--set", item)]
    assert main(["train", "--data", str(video_dataset), "--steps", "200", "--output", str(run), "--no-progress", *sets]) == 0
    chosen = [line for line in capsys.readouterr().out.splitlines() if line.startswith("chosen from the data")]
    # An orbit around an object: its box, and appearance codes for the photos.
    assert len(chosen) == 1 and "space 'box'" in chosen[0] and "appearance codes" in chosen[0], chosen
    assert main(["eval", str(run), "--split", "test", "--no-progress"]) == 0
    psnr = json.loads((run / "eval" / "test" / "metrics.json").read_text())["psnr"]
    assert psnr > VIDEO_PSNR_BAR, psnr


# ----------------------------------------------------------------------------- real photos


def test_cup_photos_register_like_the_reference(shared_data, tmp_path, capsys):
    photos = shared_data / "captures" / "cup" / "images"
    if not photos.is_dir():
        pytest.skip(f"{photos} not found")
    out = tmp_path / "cup"
    # Features at 400 px (half size) keep this at about 20 s; all 77 photos register there.
    code, stdout, err = process(capsys, photos, "--output", out, "--max-image-size", "400")
    assert code == 0, err
    assert "registered" in stdout and "time:" in stdout
    capture = read_capture(out / "sparse" / "0")
    assert len(capture.names) >= 0.9 * 77
    _, reference, _ = read_model(shared_data / "captures" / "cup" / "sparse" / "0")
    by_name = {im.name: colmap_to_c2w(im.qvec, im.tvec)[:3, 3] for im in reference.values()}
    error = alignment_error(capture.c2w[:, :3, 3], np.stack([by_name[n] for n in capture.names]))
    # Measured: mean 0.04-0.05, max 0.14-0.16 of the camera spread (0.037 / 0.14 at full size, see
    # docs/bench_process.md). The reference calibrates every photo
    # separately (focal lengths 529-632 px) while process shares one camera, so some photos sit a
    # little further along their viewing axis.
    assert error.mean() < 0.1 and error.max() < 0.3, error
