"""Which device a command runs on (``--device auto|cpu|cuda|cuda:N|mps``).

Models, occupancy grids and ray batches live on the chosen device; dataset images stay on the
CPU unless they fit comfortably on the device (see :func:`images_fit`). ``auto`` picks CUDA when
present, then Apple's MPS, else the CPU, and the commands say on one line which one they use.
"""

from __future__ import annotations

import torch

from .errors import NeuralFieldsError
from .speed import enable_tf32

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` for a ``--device`` value; a device that is not there is a one-line error.
    A CUDA device also gets TF32 matmuls (:func:`neuralfields.speed.enable_tf32`)."""
    device = _resolve(name)
    enable_tf32(device)
    return device


def _resolve(name: str | torch.device | None) -> torch.device:
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NeuralFieldsError(f"--device: unknown device '{name}'; use one of {DEVICE_CHOICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise NeuralFieldsError(f"--device {name}: this torch build sees no CUDA device "
                                    f"(torch {torch.__version__}); use --device cpu or install a CUDA build of torch")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise NeuralFieldsError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return torch.device("cuda", index)
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise NeuralFieldsError(f"--device {name}: MPS is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise NeuralFieldsError(f"--device: unsupported device type '{device.type}'; use one of {DEVICE_CHOICES}")
    return device


def module_device(module: torch.nn.Module) -> torch.device:
    """The device a module's parameters live on (where its inputs must be made)."""
    return next(module.parameters()).device


def describe_device(device: torch.device) -> str:
    """One line saying which device runs the command, e.g. ``device: cuda:0 (NVIDIA H200, 139 GiB)``."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"device: {device} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "cpu":
        return f"device: cpu ({torch.get_num_threads()} threads; no GPU found or chosen)"
    return f"device: {device}"


def images_fit(nbytes: int, device: torch.device, fraction: float = 0.25) -> bool:
    """Whether ``nbytes`` of images may live on ``device``: at most ``fraction`` of its free memory.

    On a GPU, drawing pixels where the batch is built saves a host-to-device copy every step; on
    the CPU the images are already where they need to be.
    """
    if device.type != "cuda":
        return device.type == "cpu"
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= fraction * free
