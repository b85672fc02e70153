"""Typed run configuration, scene presets and command-line overrides.

A run is described by one :class:`RunConfig` made of four sections. Presets in ``scenes/*.toml``
fill the sections; ``--set section.key=value`` (and a few shorthand flags) override them; the
resolved config is written to ``config.json`` in the run folder and read back by ``eval``,
``render``, ``--resume`` and the viewer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass
from dataclasses import field as default
from pathlib import Path
from typing import Any, get_type_hints

from .errors import NeuralFieldsError, file_error
from .selection import SelectionConfig


@dataclass
class DataConfig:
    path: str = ""  # folder of posed images; empty means the built-in demo scene
    format: str = "auto"  # auto | blender | nerfstudio | ngp | colmap | llff (auto detects from the files)
    downscale: float = 1.0  # images and intrinsics are resized by 1/downscale on load
    background: str = "white"  # white | black | random (random trains with noise, evaluates on white)
    scene_box: list[float] | None = None  # [xmin, ymin, zmin, xmax, ymax, zmax] overrides the loader's box
    near: float = 0.05  # rays start at least this far from the camera
    val_every: int = 8  # captures without split files hold out every Nth image for val/test (LLFF protocol)


@dataclass
class FieldConfig:
    name: str = "ngp"  # a registered field (see ``neuralfields.fields.FIELDS``)
    options: dict[str, Any] = default(default_factory=dict)  # keyword arguments of that field's config


@dataclass
class RenderConfig:
    sampler: str = "auto"  # a registered sampler (``neuralfields.render.SAMPLERS``); auto: see render.samplers
    space: str = "auto"  # box | contract | auto (contract unbounded captures, box for objects)
    far: float = 1000.0  # unbounded scenes: rays end this many inner-box half sizes away
    grid_resolution: int = 128  # occupancy cells per axis and cascade
    render_step_size: float | None = None  # None: inner box diagonal / samples_per_diagonal
    samples_per_diagonal: int = 512
    cone_angle: float = 0.0  # >0 grows the step with distance (instant-ngp, large scenes)
    alpha_threshold: float = 0.0  # drop samples whose alpha is below this (after warm-up)
    early_stop_eps: float = 1e-4  # drop samples once transmittance falls below this
    chunk_rays: int = 8192  # rays per chunk when rendering whole images
    skip_color_below: float = 0.0  # rendering: no colour query for samples whose weight is below this
    # The proposal sampler (render.samplers.proposal): samples per ray at each proposal level, then
    # for the scene's field; each level's hash-grid resolution; its annealing and training cadence.
    proposal_samples: list[int] = default(default_factory=lambda: [64, 32])
    samples_per_ray: int = 24
    proposal_max_res: list[int] = default(default_factory=lambda: [128, 256])
    proposal_anneal_steps: int = 500
    proposal_update_every: int = 4
    interlevel_weight: float = 1.0
    distortion_weight: float = 0.002  # mip-NeRF 360's distortion loss on the proposal sampler's samples


@dataclass
class TrainConfig:
    steps: int = 5000
    target_samples: int = 1 << 16  # samples per batch; the ray count adapts to hit it
    init_rays: int = 2048
    max_rays: int = 8192
    lr: float | None = None  # None: the field's recommended rate (1e-2 for hash grids)
    weight_decay: float = 1e-6
    # Adam's beta2: instant-ngp's 0.99, not PyTorch's 0.999. A cell that samples reach only now
    # and then gets a step of ~3 lr from one gradient and coasts ~30 lr in all with 0.999 (~10 lr
    # with 0.99). With 0.999 the deformation planes of dynamic scenes drifted until the warp blew
    # up (docs/dynamic.md); static scenes gain too (lego: docs/selection.md).
    adam_beta2: float = 0.99
    warmup_steps: int = 100
    decay_milestones: list[float] = default(default_factory=lambda: [0.5, 0.75, 0.9])  # fractions of steps
    decay_gamma: float = 0.33
    loss: str = "huber"  # huber | mse
    appearance_dropout: float = 0.1  # fraction of training rays given the mean appearance code
    # The occupancy sampler's update cadence (it owns the schedule; the values live here so that
    # one section holds everything that changes with the length of a run).
    grid_update_every: int = 16
    grid_warmup_steps: int = 256  # until then every cell is refreshed at each update
    grid_ema_decay: float = 0.95
    density_threshold: float = 0.01
    eval_every: int = 1000
    eval_images: int = 4  # val images rendered at each periodic evaluation
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    seed: int = 0
    time_budget: float | None = None  # seconds; stop when exceeded (the lr schedule then paces by time too)
    compile: bool = False  # torch.compile the field's hot path
    # CUDA only: run the field's networks under bf16 autocast while training (matmuls in bf16,
    # their outputs and the compositing in float32; neuralfields/speed.py). Off until measured
    # on a GPU (docs/bench_gpu.md); the CPU ignores it.
    mixed_precision: bool = False
    # Which pixels a batch holds (neuralfields.selection): uniform | int (the largest errors of an
    # error map, INT) | errormap (drawn in proportion to error, instant-ngp); ``select`` sizes it.
    # int by measurement (docs/selection.md): ahead of uniform on lego and the fox from a few
    # minutes on. Dynamic scenes measured worse with it: the dnerf preset sets uniform.
    selection: str = "int"
    select: SelectionConfig = default(default_factory=SelectionConfig)
    # Per-image pose corrections learned with the field (neuralfields/camera_refinement.py):
    # auto refines the cameras of photographs (COLMAP, LLFF, process output, instant-ngp and
    # nerfstudio folders without alpha) and not synthetic renders (blender layout, D-NeRF, RGBA
    # images), whose poses are exact. The rate and decay follow nerfstudio's camera optimiser.
    camera_refinement: str = "auto"  # auto | on | off
    camera_lr: float = 1e-3
    camera_weight_decay: float = 1e-2


@dataclass
class RunConfig:
    scene: str = "demo"
    output: str = ""  # run folder; empty means runs/<scene>-<field>
    data: DataConfig = default(default_factory=DataConfig)
    field: FieldConfig = default(default_factory=FieldConfig)
    render: RenderConfig = default(default_factory=RenderConfig)
    train: TrainConfig = default(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def run_dir(self) -> Path:
        return Path(self.output or f"runs/{self.scene}-{self.field.name}")


def scenes_dir() -> Path:
    """Folder holding the ``*.toml`` scene presets."""
    env = os.environ.get("NEURALFIELDS_SCENES")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "scenes"


def available_presets() -> list[str]:
    return sorted(p.stem for p in scenes_dir().glob("*.toml"))


def from_dict(cls, data: dict, where: str = "config"):
    """Build dataclass ``cls`` from nested dicts, rejecting unknown keys with a clear message."""
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise NeuralFieldsError(f"{where}: unknown key(s) {sorted(unknown)}; expected some of {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = from_dict(hint, value, f"{where}.{key}")
        else:
            kwargs[key] = value
    return cls(**kwargs)


def load_preset(name_or_path: str) -> RunConfig:
    """Load a preset by name (``scenes/<name>.toml``) or from a TOML file path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = scenes_dir() / f"{name_or_path}.toml"
        if not path.exists():
            raise NeuralFieldsError(f"unknown scene preset '{name_or_path}'; available: {', '.join(available_presets())}")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise file_error(path, f"cannot read preset: {exc}") from None
    data.setdefault("scene", path.stem)
    cfg = from_dict(RunConfig, data, str(path))
    cfg.data.path = expand_data_path(cfg.data.path)
    return cfg


def expand_data_path(path: str) -> str:
    """Expand ``$NEURALFIELDS_DATA`` (default: ``../shared/data`` beside the project) and ``~``."""
    if "NEURALFIELDS_DATA" not in os.environ and "$" in path:
        default = scenes_dir().parent.parent / "shared" / "data"
        path = path.replace("${NEURALFIELDS_DATA}", str(default)).replace("$NEURALFIELDS_DATA", str(default))
    return os.path.expanduser(os.path.expandvars(path))


def load_run_config(run_dir: str | Path) -> RunConfig:
    """Read ``config.json`` of a run folder."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise file_error(run_dir, "run folder does not exist")
    if not path.exists():
        raise file_error(run_dir, "not a run folder (no config.json)")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise file_error(path, f"malformed JSON: {exc}") from None
    return from_dict(RunConfig, data, str(path))


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # bare strings need no quotes on the command line


def apply_overrides(cfg: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply ``section.key=value`` (values parsed as JSON, else string); ``field.options.X`` too."""
    for item in assignments:
        if "=" not in item:
            raise NeuralFieldsError(f"--set {item}: expected section.key=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.split(".")
        target: Any = cfg
        for part in parts[:-1]:
            target = target[part] if isinstance(target, dict) else getattr(target, part, None)
            if target is None:
                raise NeuralFieldsError(f"--set {item}: no config section '{part}'")
        last = parts[-1]
        if isinstance(target, dict):
            target[last] = _parse_value(raw)
        elif dataclasses.is_dataclass(target) and last in {f.name for f in dataclasses.fields(target)}:
            setattr(target, last, _parse_value(raw))
        else:
            raise NeuralFieldsError(f"--set {item}: unknown key '{dotted}'")
    return cfg
