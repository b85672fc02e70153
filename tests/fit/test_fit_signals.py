"""The signal interface every kind answers: registry by suffix, grid coordinates, sampling, INT batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from neuralfields.cli import main
from neuralfields.fit.fitting import SignalSamples
from neuralfields.fit.signals import SIGNALS, kind_of
from neuralfields.fit.signals.audio import AudioSignal
from neuralfields.fit.signals.image import ImageSignal, pixel_coords
from neuralfields.fit.signals.video import VideoSignal
from neuralfields.selection import Selection, SelectionConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def small_signals() -> dict:
    rng = np.random.default_rng(0)
    signals = {"image": ImageSignal(rng.random((6, 10, 3), dtype=np.float32)),
               "audio": AudioSignal.from_samples(rng.standard_normal((500, 1)).astype(np.float32), 8000),
               "video": VideoSignal(rng.random((4, 6, 8, 3), dtype=np.float32), 25.0)}
    trimesh = pytest.importorskip("trimesh")
    from neuralfields.fit.signals.shape import ShapeSignal

    sphere = trimesh.creation.icosphere(2)
    signals["shape"] = ShapeSignal.from_mesh(sphere.vertices, sphere.faces, resolution=8)
    return signals


def test_every_kind_is_registered_by_suffix(tmp_path):
    assert SIGNALS.names() == ["image", "audio", "video", "shape"]
    for name, kind in [("a.PNG", "image"), ("a.exr", "image"), ("a.wav", "audio"), ("a.mp4", "video"),
                       ("a.gif", "video"), ("a.obj", "shape"), ("a.ply", "shape"), ("a.glb", "shape")]:
        assert kind_of(tmp_path / name).kind == kind
    assert kind_of(tmp_path).kind == "video"  # a folder of frames


def test_grid_coordinates_are_cell_centres_last_axis_first():
    signal = ImageSignal(np.zeros((5, 7, 1), np.float32))
    assert torch.equal(signal.coords, pixel_coords(5, 7))
    video = VideoSignal(np.zeros((3, 2, 4, 1), np.float32), 10.0)
    coords = video.coords.reshape(3, 2, 4, 3)
    assert torch.allclose(coords[2, 1, 3], torch.tensor([0.75, 0.5, 2 / 3]))
    idx = torch.tensor([0, 23, 11])
    c, t = video.at(idx)
    assert torch.equal(c, video.coords[idx]) and t.shape == (3, 1)
    c, t = video.sample(5, torch.Generator().manual_seed(0))
    assert c.shape == (5, 3) and t.shape == (5, 1) and c.abs().max() < 1


@pytest.mark.parametrize("kind", ["image", "audio", "video", "shape"])
def test_int_batches_take_the_worst_samples_of_every_kind(kind):
    signal = small_signals()[kind]
    source = SignalSamples(signal, Selection("int", SelectionConfig(pool=4.0, start=1.0, end=1.0)))
    hard = torch.zeros(signal.count, dtype=torch.bool)
    hard[torch.randperm(signal.count, generator=torch.Generator().manual_seed(1))[: signal.count // 10]] = True
    every = torch.arange(signal.count)
    source.draw.map.observe(every, hard.float())  # the map has seen every sample: 10% are hard
    batch = source.next(32, progress=0.0)
    assert batch.coords.shape == (32, signal.in_dim) and batch.targets.shape == (32, signal.out_dim)
    chosen = source.draw.last  # cells (= samples) of the batch, as the loop observes them
    # 4 x 32 uniform candidates hold about 13 hard samples; INT takes them all (uniform: about 3).
    assert hard[chosen].sum() >= 8
    assert torch.equal(batch.coords, signal.coords_at(chosen))


def test_cli_fits_an_image_with_int(tmp_path):
    path = tmp_path / "card.png"
    y, x = np.mgrid[0:20, 0:20] / 19
    Image.fromarray((np.stack([x, y, x * y], -1) * 255).astype(np.uint8)).save(path)
    out = tmp_path / "out"
    assert main(["fit", str(path), "--field", "ngp", "--steps", "100", "--batch", "100", "--selection", "int",
                 "--lr", "3e-2", "--set", "log2_table=10", "--set", "n_levels=4", "--output", str(out),
                 "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "image" and metrics["image"] == str(path) and metrics["batch"] == 100
    assert metrics["psnr"] > 21 and metrics["ssim"] > 0.7  # the best constant: 11.0 dB, SSIM 0.15
