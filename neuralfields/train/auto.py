"""Settings chosen from the data itself, for ``train --data FOLDER`` without a preset.

What is in the folder decides: frames with times get the ``dnerf`` preset, unbounded captures
(cameras that surround a scene with a distant background, or look outward) the ``capture``
preset with its contracted space; photos without an alpha channel get per-image appearance
codes; images much larger than a CPU trains on in minutes are read downscaled. Each choice is
reported in one line, and anything the user set explicitly wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config import RunConfig
from ..data.scene import Scene
from ..fields import FIELDS
from ..render.samplers import sampler_for
from ..render.space import space_for

APPEARANCE_DIM = 8  # numbers per image code: enough for exposure and white balance
CPU_LONG_SIDE = 640  # longest image side trained on by default when images are larger


@dataclass
class AutoChoices:
    preset: str | None = None  # folder preset to start from (None: the config defaults)
    downscale: float | None = None  # read the images at 1/downscale (None: as requested)
    notes: list[str] = field(default_factory=list)


def folder_preset(scene: Scene) -> str | None:
    """The preset a bare folder starts from: ``dnerf`` for dynamic scenes, ``capture`` for unbounded ones."""
    if scene.is_dynamic:
        return "dnerf"
    return None if scene.bounded else "capture"


def choose(scene: Scene, downscale_given: bool, downscale: float) -> AutoChoices:
    """What to change for ``scene`` (loaded at ``downscale``) before training starts."""
    choices = AutoChoices(preset=folder_preset(scene))
    if choices.preset == "capture":
        choices.notes.append("unbounded capture (photos whose cameras look outward or forward): contracted space, "
                             "preset 'capture'")
    elif choices.preset == "dnerf":
        choices.notes.append("frames carry times: dynamic field, preset 'dnerf'")
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
    space = space_for(cfg.render.space, "object" if scene.bounded else "unbounded")
    return f"space '{space}', sampler '{sampler_for(cfg.render.sampler, space == 'contract')}'"
