"""``neuralfields fit`` on videos: MP4, GIF and frame folders, the CLI fit of a rendered clip, outputs and errors."""

from __future__ import annotations

import json

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error
from neuralfields.cli import main
from neuralfields.fit.signals import ReadOptions, read_signal
from neuralfields.run.metrics import psnr

pytestmark = pytest.mark.usefixtures("one_thread")

FRAMES, H, W = 8, 24, 32


def clip(frames: int = FRAMES, h: int = H, w: int = W) -> np.ndarray:
    """A disc moving right over a colour gradient: ``[T, H, W, 3]`` uint8."""
    y, x = np.mgrid[0:h, 0:w] / np.array([h - 1, w - 1])[:, None, None]
    out = []
    for t in range(frames):
        disc = ((x - 0.2 - 0.6 * t / (frames - 1)) ** 2 + (y - 0.5) ** 2) < 0.04
        out.append(np.stack([x, y, np.where(disc, 1.0, 0.2)], -1))
    return (np.stack(out) * 255).astype(np.uint8)


@pytest.fixture
def mp4(tmp_path):
    path = tmp_path / "clip.mp4"
    imageio.mimwrite(path, list(clip()), fps=10, codec="libx264", quality=10, macro_block_size=1)
    return path


def test_mp4_gif_and_frame_folders_read_alike(tmp_path, mp4):
    video = read_signal(mp4)
    assert video.grid == (FRAMES, H, W) and video.out_dim == 3 and video.fps == pytest.approx(10)
    assert np.abs(video.values.numpy() - clip() / 255).mean() < 0.03  # H.264 is lossy, a little
    gif = tmp_path / "clip.gif"
    imageio.mimwrite(gif, list(clip()), duration=100, loop=0)
    assert read_signal(gif).grid == (FRAMES, H, W)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(clip()):
        Image.fromarray(frame).save(folder / f"{i:03d}.png")
    frames = read_signal(folder, ReadOptions(frames=5, size=16))
    assert frames.grid == (5, 12, 16) and frames.fps == 25
    np.testing.assert_allclose(read_signal(folder).values.numpy(), clip() / 255, atol=1e-6)
    # Coordinates are (x, y, t), x varying fastest.
    coords = frames.coords.reshape(5, 12, 16, 3)
    assert coords[0, 0, 1, 0] > coords[0, 0, 0, 0] and coords[0, 1, 0, 1] > coords[0, 0, 0, 1]
    assert coords[1, 0, 0, 2] > coords[0, 0, 0, 2] and coords[..., 2].min() == pytest.approx(-1 + 1 / 5)


@pytest.mark.parametrize("batch, selection", [("0", "uniform"), ("1500", "int")])
def test_cli_fits_a_clip_and_writes_videos(mp4, tmp_path, batch, selection):
    out = tmp_path / "out"
    rc = main(["fit", str(mp4), "--field", "ngp", "--steps", "150", "--batch", batch, "--selection", selection,
               "--lr", "3e-2", "--set", "log2_table=12", "--set", "n_levels=8", "--output", str(out), "--no-progress"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    video = read_signal(mp4)
    baseline = psnr(video.targets.mean(0, keepdim=True).expand_as(video.targets), video.targets)
    assert metrics["kind"] == "video" and metrics["frames"] == FRAMES and metrics["options"]["max_res"] == W
    assert metrics["psnr"] > baseline + 12, (metrics["psnr"], baseline)
    assert metrics["ssim"] > 0.7  # the best constant: 0.24
    recon = np.stack(imageio.mimread(out / "reconstruction.mp4"))
    assert recon.shape == (FRAMES, H, W, 3)
    assert np.abs(recon / 255.0 - video.values.numpy()).mean() < 0.06
    assert np.stack(imageio.mimread(out / "comparison.mp4")).shape == (FRAMES, H, 3 * W + 8, 3)
    assert np.asarray(Image.open(out / "comparison.png")).shape == (H, 3 * W + 8, 3)


def test_video_errors_are_one_line(tmp_path, mp4, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    assert_one_line_error(lambda: read_signal(bad), "bad.mp4", "cannot read video")
    assert_one_line_error(lambda: read_signal(mp4, ReadOptions(max_samples=1000)),
                          f"video of {FRAMES} frames of {W}x{H}", "--frames N keeps the first N frames", "--size P")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(lambda: read_signal(empty), "folder holds no frames")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(clip()[0]).save(mixed / "0.png")
    Image.fromarray(clip()[1][:, :20]).save(mixed / "1.png")
    assert_one_line_error(lambda: read_signal(mixed), "frames must share one size")
    rc = main(["fit", str(bad), "--steps", "1", "--no-progress", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "cannot read video" in err and "\n" not in err
