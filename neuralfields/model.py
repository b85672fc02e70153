"""A renderable scene model: field + occupancy grid + renderer, and the facts needed to rebuild it.

Training builds a :class:`SceneModel` from a config and the training scene; every consumer of a
finished run (eval, render, export, viewer, distillation) rebuilds it from the run folder with
:func:`load_model`, without reading the dataset again: the checkpoint carries the scene box,
the cascade count, whether the scene is dynamic and the training cameras.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from .cameras import Cameras
from .config import RunConfig, load_run_config
from .data.scene import Scene, background_color
from .errors import NeuralFieldsError, file_error
from .fields import Field, build_field
from .render import OccupancyGrid, Renderer, cascade_levels
from .train.checkpoints import latest_checkpoint, load_checkpoint


@dataclass
class SceneInfo:
    """What a model must know about its scene (saved in every checkpoint)."""

    aabb: Tensor  # [2, 3]
    aabb_scale: float
    dynamic: bool
    cameras: Cameras  # training cameras (camera paths and the viewer start from them)
    times: Tensor | None = None  # [N] training times for dynamic scenes

    @staticmethod
    def from_scene(scene: Scene) -> "SceneInfo":
        return SceneInfo(scene.aabb.clone(), float(scene.aabb_scale), scene.is_dynamic, scene.cameras,
                         None if scene.times is None else scene.times.clone())

    def state_dict(self) -> dict:
        cams = {k: getattr(self.cameras, k) for k in Cameras._fields()}
        return {"aabb": self.aabb, "aabb_scale": self.aabb_scale, "dynamic": self.dynamic, "cameras": cams, "times": self.times}

    @staticmethod
    def from_state(state: dict) -> "SceneInfo":
        cams = Cameras(**state["cameras"])
        return SceneInfo(state["aabb"], state["aabb_scale"], state["dynamic"], cams, state.get("times"))


@dataclass
class SceneModel:
    field: Field
    grid: OccupancyGrid
    renderer: Renderer
    info: SceneInfo
    cfg: RunConfig

    @property
    def background(self) -> Tensor:
        return background_color(self.cfg.data.background)

    def render_camera(self, cameras: Cameras, index: int, time: float | None = None) -> dict[str, Tensor]:
        """Render a full image of ``cameras[index]`` over the run's background."""
        self.field.eval()
        return self.renderer.render_camera(self.field, cameras, index, time, self.background)

    def state_dict(self) -> dict:
        return {"field": self.field.state_dict(), "grid": self.grid.state_dict(), "scene": self.info.state_dict()}


def build_model(cfg: RunConfig, info: SceneInfo) -> SceneModel:
    """Fresh field and grid for a scene."""
    field = build_field(cfg.field.name, cfg.field.options, in_dim=3, view_dependent=True,
                        aabb_scale=info.aabb_scale, time_dependent=info.dynamic)
    if info.dynamic and not field.time_dependent:
        raise NeuralFieldsError(f"field '{cfg.field.name}' is static but the scene has per-frame times; choose a dynamic field")
    grid = OccupancyGrid(info.aabb, cfg.render.grid_resolution, cascade_levels(info.aabb_scale))
    renderer = Renderer(grid, cfg.render, cfg.data.near)
    return SceneModel(field, grid, renderer, info, cfg)


def load_model(run_dir: str | Path, checkpoint: str | Path | None = None) -> tuple[SceneModel, dict]:
    """Rebuild a trained model from a run folder (newest good checkpoint unless one is named)."""
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
        model.field.load_state_dict(state["field"])
        model.grid.load_state_dict(state["grid"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise file_error(path, f"checkpoint does not match the run's field config ({first})") from None
    model.field.eval()
    return model, state
