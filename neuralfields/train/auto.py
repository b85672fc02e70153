"""Settings chosen from the data itself, for ``train --data FOLDER`` without a preset.

What is in the folder decides: frames with times get the ``dnerf`` preset, forward-facing
captures (every camera looks the same way at a scene in front of all of them: LLFF) the
``forward`` preset with NDC, unbounded captures (cameras that surround a scene with a distant
background, or look outward) the ``capture`` preset with its contracted space; the line that
reports the choices says why. Photos without an alpha channel get per-image appearance
codes; images much larger than a CPU trains on in minutes are read downscaled. On a CUDA device
the images keep their full size when they fit in its free memory beside a working margin (else
the smallest power-of-two downscale that fits). Each choice is reported in one line, and
anything the user set explicitly wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..config import RunConfig
from ..data.scene import Scene
from ..fields import FIELDS
from ..render.samplers import sampler_for
from ..data.normalize import camera_facing
from ..render.space import SPACES, space_for

APPEARANCE_DIM = 8  # numbers per image code: enough for exposure and white balance
CPU_LONG_SIDE = 640  # longest image side trained on by default when images are larger
# On a GPU the training images live on the device when they take at most a quarter of its free
# memory (device.images_fit); the rest, and at least GPU_WORK_BYTES, is left for the field, its
# optimiser state, the occupancy grid and a batch's activations.
GPU_IMAGE_SHARE = 0.25
GPU_WORK_BYTES = 2 << 30
GPU_MAX_DOWNSCALE = 16  # beyond this the images are not what limits memory


@dataclass
class AutoChoices:
    preset: str | None = None  # folder preset to start from (None: the config defaults)
    downscale: float | None = None  # read the images at 1/downscale (None: as requested)
    notes: list[str] = field(default_factory=list)


def folder_preset(scene: Scene) -> str | None:
    """The preset a bare folder starts from: ``dnerf`` for dynamic scenes, ``forward`` for
    forward-facing captures, ``capture`` for unbounded ones."""
    if scene.is_dynamic:
        return "dnerf"
    return None if scene.bounded else ("forward" if scene.kind == "forward" else "capture")


def facing_note(scene: Scene) -> str:
    """Why the capture is, or is not, forward-facing (:func:`~neuralfields.data.normalize.camera_facing`)."""
    return camera_facing(scene.cameras.c2w.double().numpy(), scene.near_depths).describe()


def free_device_memory(device: torch.device | str | None) -> int | None:
    """Free bytes on ``device`` when it is a CUDA device (``torch.cuda.mem_get_info``); None elsewhere."""
    if device is None or torch.device(device).type != "cuda":
        return None
    return torch.cuda.mem_get_info(torch.device(device))[0]


def images_fit_gpu(nbytes: int, free_bytes: int) -> bool:
    """Whether ``nbytes`` of uint8 training images fit a GPU with ``free_bytes`` free: at most
    ``GPU_IMAGE_SHARE`` of it (so the trainer keeps them there), with ``GPU_WORK_BYTES`` left beside."""
    return nbytes <= GPU_IMAGE_SHARE * free_bytes and free_bytes - nbytes >= GPU_WORK_BYTES


def gpu_downscale(scene: Scene, free_bytes: int) -> tuple[int | None, str]:
    """The downscale (relative to how ``scene`` was loaded) at which its images fit a GPU with
    ``free_bytes`` free: 1 when they fit as they are, else the smallest power of two that fits
    (None when even 1/``GPU_MAX_DOWNSCALE`` does not), and a note saying why."""
    n, h, w, c = scene.images.shape
    free = f"{free_bytes / 2**30:.1f} GiB free on the GPU"
    factor = 1
    while factor <= GPU_MAX_DOWNSCALE:
        nbytes = n * max(1, round(h / factor)) * max(1, round(w / factor)) * c
        if images_fit_gpu(nbytes, free_bytes):
            if factor == 1:
                return 1, f"{w}x{h} images kept at full size ({nbytes / 2**30:.2f} GiB as uint8; {free})"
            return factor, (f"{w}x{h} images read at 1/{factor} ({round(w / factor)}x{round(h / factor)}, "
                            f"{nbytes / 2**30:.2f} GiB as uint8; {free}: full size does not fit; --downscale sets it)")
        factor *= 2
    return None, f"{free}: too little for the images at any size (they stay in host memory, sized as on a CPU)"


def choose(scene: Scene, downscale_given: bool, downscale: float, free_bytes: int | None = None) -> AutoChoices:
    """What to change for ``scene`` (loaded at ``downscale``) before training starts.

    ``free_bytes``: free memory of the CUDA device that trains (:func:`free_device_memory`), None
    on the CPU. Given, the image size follows from it (:func:`gpu_downscale`) instead of the
    CPU's long-side rule.
    """
    choices = AutoChoices(preset=folder_preset(scene))
    if choices.preset == "forward":
        choices.notes.append(f"forward-facing capture ({facing_note(scene)}): NDC space, preset 'forward'")
    elif choices.preset == "capture":
        choices.notes.append(f"unbounded capture (photos whose cameras look outward or surround a distant background; "
                             f"not forward-facing: {facing_note(scene)}): contracted space, preset 'capture'")
    elif choices.preset == "dnerf":
        choices.notes.append("frames carry times: dynamic field, preset 'dnerf'")
    if not downscale_given and free_bytes is not None:
        factor, note = gpu_downscale(scene, free_bytes)
        if factor is not None:
            choices.downscale = downscale * factor if factor > 1 else None
            choices.notes.append(note)
            return choices
        choices.notes.append(note)
    long_side = max(scene.width, scene.height)
    if not downscale_given and long_side > CPU_LONG_SIDE * 1.5:
        factor = 2 ** math.ceil(math.log2(long_side / CPU_LONG_SIDE))
        choices.downscale = downscale * factor
        choices.notes.append(f"{scene.width}x{scene.height} images read at 1/{choices.downscale:g} "
                             f"({scene.width // factor}x{scene.height // factor}; --downscale sets it)")
    return choices


def apply_appearance(cfg: RunConfig, scene: Scene, user_set: list[str]) -> str | None:
    """Per-image appearance codes for photos (no alpha channel) when the field supports them."""
    if scene.has_alpha or scene.is_dynamic or any(s.startswith("field.options.appearance_dim") for s in user_set):
        return None
    options = FIELDS[cfg.field.name].config_cls
    if "appearance_dim" not in getattr(options, "__dataclass_fields__", {}):
        return None
    cfg.field.options = {**cfg.field.options, "appearance_dim": cfg.field.options.get("appearance_dim") or APPEARANCE_DIM}
    return f"photos: per-image appearance codes of {cfg.field.options['appearance_dim']} numbers"


def describe(cfg: RunConfig, scene: Scene) -> str:
    """One line saying what the run will use for space and sampler."""
    space = space_for(cfg.render.space, scene.kind)
    return f"space '{space}', sampler '{sampler_for(cfg.render.sampler, SPACES[space].unbounded)}'"
