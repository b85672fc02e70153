"""Audio: samples ``[T, C]`` (C channels) at coordinates ``t`` in ``[-1, 1]`` over the clip.

WAV files are read by ``scipy.io.wavfile`` (8/16/24/32-bit integers or 32/64-bit floats, what
the standard library's ``wave`` cannot read). As in SIREN's audio experiment the clip is divided
by its peak amplitude; the fields see ``(a + 1) / 2`` in ``[0, 1]``. PSNR is therefore that of the
peak-normalised clip with its full range ``[-1, 1]`` as the peak-to-peak value; SNR is
``10 log10(sum a^2 / sum (a - a')^2)``. The reconstruction is written as a float WAV at the
clip's rate and amplitude.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from torch import Tensor

from ...atomic import atomic_path
from ...compiling import first_line
from ...errors import file_error
from ...run.metrics import psnr
from .base import ReadOptions, Signal, register_signal, require

INT_SCALE = {np.dtype("uint8"): (128.0, 128.0), np.dtype("int16"): (0.0, 2.0**15), np.dtype("int32"): (0.0, 2.0**31)}


def read_wav(path: Path, seconds: float | None = None) -> tuple[int, np.ndarray]:
    """``(rate, samples [T, C] float32 in [-1, 1])`` of a WAV file (its first ``seconds``), or a one-line error."""
    require(path, ("scipy",), "audio")
    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown chunks (cue points, metadata) are skipped anyway
            rate, data = wavfile.read(path)
    except Exception as exc:  # scipy raises ValueError, EOFError, even UnboundLocalError for a bad file
        raise file_error(path, f"cannot read WAV audio ({first_line(exc)})") from None
    if seconds is not None:  # before converting: a long clip need not be converted whole
        data = data[: max(1, int(round(seconds * rate)))]
    if data.dtype in INT_SCALE:
        offset, scale = INT_SCALE[data.dtype]
        data = (data.astype(np.float64) - offset) / scale
    elif data.dtype.kind != "f":
        raise file_error(path, f"unsupported WAV sample type {data.dtype}")
    data = np.asarray(data, dtype=np.float32)
    return int(rate), data[:, None] if data.ndim == 1 else data


def nyquist_octaves(samples: int) -> int:
    """Octaves of a positional encoding up to the Nyquist rate of ``samples`` over ``[-1, 1]``
    (SIREN's ReLU+PE baseline for audio)."""
    return max(1, int(math.floor(math.log2(max(samples / 4, 2)))))


@register_signal
class AudioSignal(Signal):
    """A clip ``[T, C]``; ``rate`` samples per second; ``scale`` its peak amplitude."""

    kind = "audio"
    suffixes = (".wav",)
    uses = frozenset({"seconds"})
    subsample_hint = "--seconds S keeps the first S seconds"

    def __init__(self, values: np.ndarray, rate: int, scale: float, source: str = ""):
        super().__init__(values, source)
        self.rate, self.scale = rate, scale

    @classmethod
    def from_samples(cls, samples: np.ndarray, rate: int, source: str = "") -> "AudioSignal":
        """A clip of ``samples [T, C]`` in any amplitude (peak-normalised here)."""
        scale = float(np.abs(samples).max())
        return cls((samples / scale + 1) / 2, rate, scale, source)

    @classmethod
    def read(cls, path: Path, options: ReadOptions) -> "AudioSignal":
        rate, samples = read_wav(path, options.seconds)
        if len(samples) < 2:
            raise file_error(path, f"audio too short to fit ({len(samples)} samples)")
        if not np.isfinite(samples).all():
            raise file_error(path, "audio holds NaN or infinite samples")
        if not np.abs(samples).max() > 0:
            raise file_error(path, "audio is silent (every sample is 0)")
        return cls.from_samples(samples, rate, str(path))

    def field_defaults(self, field: str) -> dict:
        # A clip is thousands of periods long: the first layer must reach audio frequencies.
        # SIREN's audio experiment: first omega_0 3000 on [-1, 1] (its code: 30 on [-100, 100]);
        # its ReLU+PE baseline: octaves up to the Nyquist rate. WIRE has no audio experiment:
        # with SIREN's 3000 it learnt nothing at any rate tried, 300 at 1e-3 did (docs/fields.md).
        gabor = {"backbone_options": {"first_omega": 300.0}, "lr": 1e-3}
        return {"siren": {"backbone_options": {"first_omega": 3000.0}}, "wire": gabor, "wire-complex": gabor,
                "nerf": {"encoding_options": {"n_frequencies": nyquist_octaves(self.count)}},
                "ngp": {"max_res": self.count}}.get(field, {})

    def amplitude(self, values: np.ndarray | Tensor) -> np.ndarray:
        """Fitted values in ``[0, 1]`` back to samples at the clip's amplitude."""
        return ((np.asarray(values) * 2 - 1) * self.scale).astype(np.float32)

    def metrics(self, pred: Tensor) -> dict:
        signal = self.targets.double() * 2 - 1
        noise = (pred.double() * 2 - 1 - signal).square().sum().item()
        snr = 10 * math.log10(signal.square().sum().item() / max(noise, 1e-30))
        return {"psnr": psnr(pred, self.targets), "snr": snr}

    def write(self, pred: Tensor, out_dir: Path) -> dict[str, Path]:
        from scipy.io import wavfile

        path = out_dir / "reconstruction.wav"
        samples = self.amplitude(pred)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                wavfile.write(f, self.rate, samples[:, 0] if samples.shape[1] == 1 else samples)
        return {"reconstruction": path}

    def record(self) -> dict:
        return {"kind": self.kind, "samples": self.count, "rate": self.rate, "channels": self.out_dim,
                "duration": self.count / self.rate, "peak": self.scale}

    def describe(self) -> str:
        return (f"audio: {self.source} ({self.count:,} samples, {self.count / self.rate:.2f} s at {self.rate} Hz, "
                f"{self.out_dim} channel{'s' if self.out_dim > 1 else ''})")
