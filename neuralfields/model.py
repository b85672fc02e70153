"""A renderable scene model: field + sampler + renderer, and the facts needed to rebuild it.

Training builds a :class:`SceneModel` from a config and the training scene; every consumer of a
finished run (eval, render, export, viewer, distillation) rebuilds it from the run folder with
:func:`load_model`, without reading the dataset again: the checkpoint carries the scene box,
the cascade count, whether the scene is dynamic and the training cameras.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from .cameras import Cameras
from .config import RunConfig, load_run_config
from .data.scene import Scene, background_color
from .device import module_device
from .errors import NeuralFieldsError, file_error
from .fields import Field, build_field
from .fields.appearance import AppearanceCodes
from .render import SAMPLERS, SPACES, GridUpdate, OccupancyGrid, Renderer, density_at
from .render.samplers import sampler_for
from .render.space import space_for
from .run.checkpoints import latest_checkpoint, load_checkpoint


@dataclass
class SceneInfo:
    """What a model must know about its scene (saved in every checkpoint; kept on the CPU)."""

    aabb: Tensor  # [2, 3]
    aabb_scale: float
    dynamic: bool
    cameras: Cameras  # training cameras (camera paths and the viewer start from them)
    times: Tensor | None = None  # [N] training times for dynamic scenes
    kind: str = "object"  # object | unbounded (see Scene.bounded): picks the space when render.space is auto

    @staticmethod
    def from_scene(scene: Scene) -> "SceneInfo":
        return SceneInfo(scene.aabb.clone(), float(scene.aabb_scale), scene.is_dynamic, scene.cameras,
                         None if scene.times is None else scene.times.clone(),
                         "object" if scene.bounded else "unbounded")

    @property
    def inner_aabb(self) -> Tensor:
        """``[2, 3]`` the object box: the scene box shrunk ``aabb_scale`` times around its centre."""
        centre, half = self.aabb.mean(0), (self.aabb[1] - self.aabb[0]) / 2 / max(self.aabb_scale, 1.0)
        return torch.stack([centre - half, centre + half])

    def state_dict(self) -> dict:
        cams = {k: getattr(self.cameras, k) for k in Cameras._fields()}
        return {"aabb": self.aabb, "aabb_scale": self.aabb_scale, "dynamic": self.dynamic, "cameras": cams,
                "times": self.times, "kind": self.kind}

    @staticmethod
    def from_state(state: dict) -> "SceneInfo":
        cams = Cameras(**{k: v.cpu() for k, v in state["cameras"].items()})
        times = state.get("times")
        return SceneInfo(state["aabb"].cpu(), state["aabb_scale"], state["dynamic"], cams,
                         None if times is None else times.cpu(), state.get("kind", "object"))


@dataclass
class SceneModel:
    field: Field
    sampler: nn.Module
    renderer: Renderer
    space: nn.Module
    info: SceneInfo
    cfg: RunConfig

    @property
    def grid(self) -> OccupancyGrid | None:
        """The sampler's occupancy grid when it lies in world space (exporters crop and cull with
        it); None for samplers without one or with a grid over contracted space."""
        return getattr(self.sampler, "world_grid", None)

    @property
    def appearance(self) -> AppearanceCodes | None:
        return self.renderer.appearance

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimiser groups of everything trained: the field, the sampler's own networks, the codes."""
        groups = self.field.param_groups(lr, weight_decay)
        if hasattr(self.sampler, "param_groups"):
            groups += self.sampler.param_groups(lr)
        if self.appearance is not None:
            groups.append({"params": list(self.appearance.parameters()), "lr": lr, "weight_decay": 0.0})
        return groups

    @property
    def device(self) -> torch.device:
        return module_device(self.field)

    @property
    def background(self) -> Tensor:
        return background_color(self.cfg.data.background)

    def to(self, device: torch.device | str) -> "SceneModel":
        """Move the field, the sampler's state and the coordinate map (in place)."""
        self.field.to(device)
        self.sampler.to(device)
        self.space.to(device)
        if self.appearance is not None:
            self.appearance.to(device)
        return self

    def density_fn(self, time: float | None = None):
        """``world points [N, 3] -> sigma [N]`` at one time (static fields ignore it)."""
        return lambda x: density_at(self.field, self.space, x, time)

    def render_camera(self, cameras: Cameras, index: int, time: float | None = None, **kwargs) -> dict[str, Tensor]:
        """Render a full image of ``cameras[index]`` over the run's background (buffers on the CPU)."""
        self.field.eval()
        return self.renderer.render_camera(self.field, cameras, index, time, self.background, **kwargs)

    def state_dict(self) -> dict:
        state = {"field": self.field.state_dict(), "sampler": self.sampler.state_dict(), "scene": self.info.state_dict()}
        if self.appearance is not None:
            state["appearance"] = self.appearance.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Field and sampler state from a checkpoint (older checkpoints store the grid as ``grid``)."""
        self.field.load_state_dict(state["field"])
        if self.appearance is not None:
            self.appearance.load_state_dict(state["appearance"])
        if "sampler" in state:
            self.sampler.load_state_dict(state["sampler"])
        else:
            self.sampler.grid.load_state_dict(state["grid"])


def grid_schedule(cfg: RunConfig) -> GridUpdate:
    t = cfg.train
    return GridUpdate(t.grid_update_every, t.grid_warmup_steps, t.grid_ema_decay, t.density_threshold)


def build_model(cfg: RunConfig, info: SceneInfo, device: torch.device | str = "cpu") -> SceneModel:
    """Fresh field and sampler for a scene, on ``device``."""
    # The scene box (cameras inside it) is the box a contraction keeps as it is; everything
    # beyond it is squeezed into the shell around it.
    space = SPACES[space_for(cfg.render.space, info.kind)](info.aabb)
    # Contracted space gives the scene box half of the field's cube: twice the grid resolution keeps
    # the same detail per unit length there.
    field = build_field(cfg.field.name, cfg.field.options, in_dim=3, view_dependent=True,
                        aabb_scale=info.aabb_scale * (2.0 if space.unbounded else 1.0), time_dependent=info.dynamic)
    if info.dynamic and not field.time_dependent:
        raise NeuralFieldsError(f"field '{cfg.field.name}' is static but the scene has per-frame times; choose a dynamic field")
    sampler = SAMPLERS[sampler_for(cfg.render.sampler, space.unbounded)](
        aabb=info.aabb, space=space, cfg=cfg.render, near=cfg.data.near, aabb_scale=info.aabb_scale,
        schedule=grid_schedule(cfg), times=info.times if info.dynamic else None)
    appearance = (AppearanceCodes(len(info.cameras), field.appearance_dim, cfg.train.appearance_dropout)
                  if field.appearance_dim else None)
    renderer = Renderer(sampler, space, cfg.render, appearance)
    return SceneModel(field, sampler, renderer, space, info, cfg).to(device)


def load_model(run_dir: str | Path, checkpoint: str | Path | None = None,
               device: torch.device | str = "cpu") -> tuple[SceneModel, dict]:
    """Rebuild a trained model from a run folder (newest good checkpoint unless one is named) on ``device``."""
    cfg = load_run_config(run_dir)
    if checkpoint is not None:
        path, state = Path(checkpoint), load_checkpoint(checkpoint)
    else:
        found = latest_checkpoint(run_dir)
        if found is None:
            raise file_error(run_dir, "run folder has no readable checkpoint (train it first)")
        path, state = found
    model = build_model(cfg, SceneInfo.from_state(state["scene"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise file_error(path, f"checkpoint does not match the run's field config ({first})") from None
    model.to(device)
    model.field.eval()
    return model, state
