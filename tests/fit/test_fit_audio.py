"""``neuralfields fit`` on audio: WAV reading, the CLI fit of a synthesised chirp, its outputs and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.io import wavfile

from conftest import assert_one_line_error
from neuralfields.cli import main
from neuralfields.fit.fitting import signal_options
from neuralfields.fit.signals import ReadOptions, read_signal
from neuralfields.fit.signals.audio import AudioSignal, nyquist_octaves, read_wav
from neuralfields.run.metrics import psnr

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = 8000


def chirp(seconds: float = 0.25, rate: int = RATE) -> np.ndarray:
    """A rising chirp (200 -> 1200 Hz) under a slow envelope, peak 0.8."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (200 * t + 0.5 * (1000 / seconds) * t**2)
    return (0.8 * np.sin(phase) * np.sin(np.pi * t / seconds) ** 0.5).astype(np.float32)


@pytest.fixture
def chirp_wav(tmp_path):
    path = tmp_path / "chirp.wav"
    wavfile.write(path, RATE, (chirp() * 32767).astype(np.int16))
    return path


def constant_psnr(signal) -> float:
    """PSNR of the best constant: what a fit must beat to have learnt anything."""
    return psnr(signal.targets.mean(0, keepdim=True).expand_as(signal.targets), signal.targets)


@pytest.mark.parametrize("dtype, scale", [(np.int16, 32767), (np.int32, 2**31 - 1), (np.uint8, None), (np.float32, 1.0)])
def test_wav_samples_of_every_type_read_to_the_same_clip(tmp_path, dtype, scale):
    clip = chirp(0.05)
    data = (clip * 127 + 128).round().astype(np.uint8) if scale is None else (clip * scale).astype(dtype)
    path = tmp_path / "x.wav"
    wavfile.write(path, RATE, data)
    rate, samples = read_wav(path)
    assert rate == RATE and samples.shape == (len(clip), 1) and samples.dtype == np.float32
    np.testing.assert_allclose(samples[:, 0], clip, atol=1.5 / 127 if scale is None else 1e-4)


def test_stereo_clips_keep_their_channels_and_seconds_crop(tmp_path):
    path = tmp_path / "stereo.wav"
    wavfile.write(path, RATE, np.stack([chirp(), -0.5 * chirp()], -1))
    signal = read_signal(path, ReadOptions(seconds=0.1))
    assert signal.grid == (800,) and signal.out_dim == 2 and signal.rate == RATE
    # Peak-normalised, then mapped to [0, 1]; the amplitude comes back on writing.
    assert signal.targets.max() == pytest.approx(1.0, abs=0.02) and 0 <= signal.targets.min()
    np.testing.assert_allclose(signal.amplitude(signal.targets)[:, 1], -0.5 * chirp()[:800], atol=1e-5)
    coords = signal.coords
    assert coords.shape == (800, 1) and coords[0, 0] == pytest.approx(-1 + 1 / 800) and coords[-1, 0] == pytest.approx(1 - 1 / 800)


def test_audio_defaults_follow_the_papers_and_yield_to_the_user(chirp_wav):
    signal = read_signal(chirp_wav)
    assert signal_options(signal, "siren", None)["backbone_options"] == {"first_omega": 3000.0}
    mine = signal_options(signal, "siren", {"hidden": 32, "backbone_options": {"first_omega": 60}})
    assert mine == {"hidden": 32, "backbone_options": {"first_omega": 60}}
    assert signal_options(signal, "nerf", {})["encoding_options"]["n_frequencies"] == nyquist_octaves(2000) == 8
    # A field wrapping another gets its base's defaults.
    cam = signal_options(signal, "cam", {"base": "siren", "base_options": {"hidden": 16}})
    assert cam["base_options"] == {"hidden": 16, "backbone_options": {"first_omega": 3000.0}}
    assert signal_options(signal, "triplane", {"hidden": 8}) == {"hidden": 8}


@pytest.mark.parametrize("batch, selection, first_omega", [("0", "uniform", 3000.0), ("1000", "int", 1000.0)])
def test_cli_fits_a_chirp_and_writes_a_wav(chirp_wav, tmp_path, batch, selection, first_omega, capsys):
    out = tmp_path / "out"
    mine = [] if first_omega == 3000.0 else ["--set", f'backbone_options={{"first_omega": {first_omega}}}']
    rc = main(["fit", str(chirp_wav), "--field", "siren", "--steps", "300", "--batch", batch, "--selection", selection,
               "--lr", "1e-3", "--set", "hidden=64", "--set", "layers=2", *mine, "--output", str(out), "--no-progress"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    baseline = constant_psnr(read_signal(chirp_wav))
    assert metrics["kind"] == "audio" and metrics["samples"] == 2000 and metrics["rate"] == RATE
    assert metrics["options"]["backbone_options"]["first_omega"] == first_omega and metrics["steps"] == 300
    assert metrics["psnr"] > baseline + 12, (metrics["psnr"], baseline)  # a constant has an SNR of 0 dB
    assert metrics["snr"] > 10
    rate, samples = wavfile.read(out / "reconstruction.wav")
    assert rate == RATE and samples.shape == (2000,) and samples.dtype == np.float32
    clip = chirp()
    assert np.sqrt(np.mean((samples - clip) ** 2)) < 0.25 * np.sqrt(np.mean(clip**2))  # the reconstruction plays the chirp
    assert '"snr"' in capsys.readouterr().out


def test_audio_errors_are_one_line(tmp_path, chirp_wav, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    silent = tmp_path / "silent.wav"
    wavfile.write(silent, RATE, np.zeros(100, np.int16))
    assert_one_line_error(lambda: read_signal(bad), "bad.wav", "cannot read WAV audio")
    assert_one_line_error(lambda: read_signal(silent), "silent.wav", "silent")
    assert_one_line_error(lambda: read_signal(chirp_wav, ReadOptions(max_samples=500)),
                          "2,000 samples", "more than --max-samples 500", "--seconds S keeps the first S seconds")
    assert_one_line_error(lambda: read_signal(chirp_wav, ReadOptions(frames=3)), "--frames does not apply to audio signals")
    rc = main(["fit", str(tmp_path / "missing.wav"), "--steps", "1", "--no-progress", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "audio file not found" in err and "\n" not in err


def test_audio_signal_from_samples_scores_snr():
    signal = AudioSignal.from_samples(chirp()[:, None], RATE)
    assert signal.metrics(signal.targets)["snr"] > 100
    half = (signal.targets - 0.5) * 0.5 + 0.5  # half the amplitude: the error is half the signal
    assert signal.metrics(half)["snr"] == pytest.approx(20 * np.log10(2), abs=1e-3)
    assert np.array_equal(signal.reconstruction(signal.targets)[:, 0], signal.targets[:, 0].numpy())
