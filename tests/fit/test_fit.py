"""``neuralfields fit`` and the 2D signal readers (PNG, JPG, EXR)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from neuralfields.cli import main
from neuralfields.errors import NeuralFieldsError
from neuralfields.fit.image import FitConfig, fit_image, pixel_coords, side_by_side
from neuralfields.fit.io import collapse_grey, linear_to_srgb, read_signal_image

pytestmark = pytest.mark.usefixtures("one_thread")


def card(size: int = 24) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    return np.stack([x, y, ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.1) * 1.0], -1).astype(np.float32)


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "card.png"
    Image.fromarray((card() * 255).astype(np.uint8)).save(path)
    return path


def test_cli_fit_writes_outputs(png, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["fit", str(png), "--field", "siren", "--steps", "40", "--output", str(out), "--no-progress",
               "--set", "hidden=32", "--set", "layers=2", "--lr", "1e-3"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["field"] == "siren" and metrics["steps"] == 40 and metrics["num_parameters"] > 0
    assert metrics["options"]["hidden"] == 32 and metrics["lr"] == pytest.approx(1e-3)
    assert 5 < metrics["psnr"] < 100 and -1 <= metrics["ssim"] <= 1
    recon = np.asarray(Image.open(out / "reconstruction.png"))
    assert recon.shape == (24, 24, 3)
    comparison = np.asarray(Image.open(out / "comparison.png"))
    assert comparison.shape == (24, 3 * 24 + 8, 3)
    assert "psnr" in capsys.readouterr().out


def test_cli_fit_batches_and_grey_images(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray((card()[..., 0] * 255).astype(np.uint8), mode="L").save(path)
    out = tmp_path / "grey"
    rc = main(["fit", str(path), "--field", "cam", "--steps", "20", "--batch", "100", "--output", str(out),
               "--no-progress", "--set", 'base_options={"hidden": 16, "layers": 2}'])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["channels"] == 1 and metrics["batch"] == 100
    assert np.asarray(Image.open(out / "reconstruction.png")).shape == (24, 24)


@pytest.mark.parametrize("args, message", [
    (["missing.png"], "image file not found"),
    (["{bad}", "--field", "nope"], "unknown field 'nope'"),
    (["{bad}", "--set", "hiddn=3"], "unknown key"),
    (["{bad}", "--set", "oops"], "expected KEY=VALUE"),
    (["{bad}"], "cannot read image"),
])
def test_cli_fit_errors_are_one_line(args, message, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    argv = ["fit"] + [a.replace("{bad}", str(bad)) if a != "missing.png" else str(tmp_path / a) for a in args]
    assert main(argv + ["--steps", "1", "--no-progress", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_readers(tmp_path):
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.full((5, 6, 4), 200, np.uint8)).save(rgba)
    img = read_signal_image(rgba)
    assert img.shape == (5, 6, 3) and img.dtype == np.float32 and np.allclose(img, 200 / 255)
    jpg = tmp_path / "x.jpg"
    Image.fromarray((card() * 255).astype(np.uint8)).save(jpg)
    assert read_signal_image(jpg).shape == (24, 24, 3)
    assert collapse_grey(np.repeat(card()[..., :1], 3, -1)).shape == (24, 24, 1)
    assert collapse_grey(card()).shape == (24, 24, 3)
    with pytest.raises(NeuralFieldsError, match="folder"):
        read_signal_image(tmp_path)


def test_srgb_tone_mapping():
    values = linear_to_srgb(np.array([-1.0, 0.0, 0.002, 0.5, 1.0, 7.0]))
    np.testing.assert_allclose(values, [0.0, 0.0, 12.92 * 0.002, 0.735357, 1.0, 1.0], atol=1e-5)


def test_exr_round_trip(tmp_path):
    OpenEXR = pytest.importorskip("OpenEXR")
    linear = np.stack([*np.meshgrid(np.linspace(0, 2, 8), np.linspace(0, 1, 6)), np.full((6, 8), 0.5)], -1).astype(np.float32)
    path = tmp_path / "ramp.exr"
    channels = {c: np.ascontiguousarray(linear[..., i]) for i, c in enumerate("RGB")}
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels).write(str(path))
    img = read_signal_image(path)
    assert img.shape == (6, 8, 3)
    np.testing.assert_allclose(img, linear_to_srgb(linear), atol=1e-6)  # clipped above 1, sRGB-encoded
    assert img.max() == pytest.approx(1.0)


def test_albert_exr(shared_data):
    pytest.importorskip("OpenEXR")
    path = shared_data / "images" / "albert.exr"
    if not path.exists():
        pytest.skip(f"{path} not found")
    img = read_signal_image(path)
    assert img.shape == (1024, 1024, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and 0.2 < img.mean() < 0.8
    assert collapse_grey(img).shape == (1024, 1024, 1)  # a grey photograph stored as RGB


def test_fit_checkpoints_and_coords():
    coords = pixel_coords(2, 4)
    assert coords.shape == (8, 2) and torch.allclose(coords[0], torch.tensor([-0.75, -0.5]))
    res = fit_image(card(16), "mlp", {"hidden": 16, "layers": 2}, FitConfig(steps=30, eval_steps=[10, 30], lr=1e-2),
                    progress=False)
    assert [c["step"] for c in res.checkpoints] == [10, 30]
    assert res.checkpoints[-1]["psnr"] == pytest.approx(res.psnr)
    assert side_by_side(card(16), res.reconstruction).shape == (16, 56, 3)
