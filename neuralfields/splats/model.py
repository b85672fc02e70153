"""A Gaussian scene as a run: what ``distill --student gaussians`` trains, ``eval --splats``
scores and ``export splats`` writes.

The splat run folder is a run folder like any other (``config.json``, ``checkpoints/``,
``metrics.jsonl``, ``summary.json``); by default it is ``RUN/splats/`` inside the teacher's run.
Its ``config.json`` is the teacher's run config with ``field.name = "gaussians"`` and the splat
settings as ``field.options``, so the data (and the val/test split eval reads) stay the teacher's.
A checkpoint holds the Gaussians (``splats``) and the scene facts (``scene``: box and training
cameras, as a field checkpoint does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..cameras import Cameras
from ..config import RunConfig, load_run_config
from ..data.scene import background_color
from ..errors import NeuralFieldsError, file_error
from ..run.checkpoints import latest_checkpoint
from ..scene_model import SceneInfo
from .rasterize import RasterOutput, RasterSettings, rasterize
from .scene import GaussianScene

KIND = "gaussians"  # field.name of a splat run's config
SPLATS_FOLDER = "splats"  # a field run's splat run, by default


class SplatModel(nn.Module):
    """Gaussians, the scene facts and the run config, asked as a :class:`~neuralfields.scene_model.SceneModel`
    is: ``render_camera``, ``background``, ``param_groups``, ``training_hooks``, checkpoints.

    ``hooks`` run before every training step (densification, the SH degree schedule); ``extent``
    is the scene size the position learning rate scales with.
    """

    def __init__(self, scene: GaussianScene, info: SceneInfo, cfg: RunConfig, extent: float = 1.0,
                 raster: RasterSettings | None = None, hooks: list[Callable[[int], None]] | None = None):
        super().__init__()
        self.scene, self.info, self.cfg, self.extent = scene, info, cfg, float(extent)
        self.raster = raster or RasterSettings()
        self.hooks = list(hooks or [])

    @property
    def device(self) -> torch.device:
        return self.scene.means.device

    @property
    def background(self) -> Tensor:
        return background_color(self.cfg.data.background)

    @property
    def num_parameters(self) -> int:
        return self.scene.num_parameters

    def render(self, cameras: Cameras, index: int, background: Tensor | None = None, depth: bool = False) -> RasterOutput:
        """Differentiable render of camera ``index`` over ``background`` (default: the run's)."""
        bg = self.background if background is None else background
        return rasterize(self.scene.gaussians(), cameras, index, bg, self.raster, depth)

    @torch.no_grad()
    def render_camera(self, cameras: Cameras, index: int, time: float | None = None,
                      outputs: Sequence[str] | None = None, background: Tensor | None = None) -> dict[str, Tensor]:
        """``rgb [H, W, 3]``, ``depth [H, W]`` (camera-space z, premultiplied by opacity) and
        ``opacity [H, W]`` of camera ``index`` on the CPU, as ``SceneModel.render_camera`` returns
        them (``time``: splats are static)."""
        out = self.render(cameras, index, background, depth=True)
        buffers = {"rgb": out.rgb, "depth": out.depth, "opacity": out.alpha}
        return {k: buffers[k].cpu() for k in (outputs or ("rgb", "depth", "opacity"))}

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]:
        return self.scene.param_groups(lr, extent=self.extent)

    def training_hooks(self) -> list[Callable[[int], None]]:
        return self.hooks

    def state_dict(self, *args, **kwargs) -> dict:
        return {"splats": self.scene.state_dict(), "scene": self.info.state_dict()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        self.scene.load_state_dict(state["splats"])


def splat_run_dir(run_dir: str | Path) -> Path:
    """The splat run of ``run_dir``: itself when it is one, else its ``splats/`` folder."""
    run_dir = Path(run_dir)
    if load_run_config(run_dir).field.name == KIND:
        return run_dir
    inner = run_dir / SPLATS_FOLDER
    if not (inner / "config.json").is_file():
        raise file_error(run_dir, f"no splats yet (make them with: neuralfields distill {run_dir} --student gaussians)")
    return inner


def load_splats(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[SplatModel, dict]:
    """The newest splat checkpoint of ``run_dir`` (a splat run, or a run with ``splats/``) on ``device``."""
    folder = splat_run_dir(run_dir)
    cfg = load_run_config(folder)
    if cfg.field.name != KIND:
        raise file_error(folder / "config.json", f"not a splat run (its field is '{cfg.field.name}')")
    found = latest_checkpoint(folder)
    if found is None:
        raise file_error(folder, "splat run has no readable checkpoint (the distillation saved none yet)")
    path, state = found
    try:
        scene = GaussianScene.from_state_dict(state["splats"])
        info = SceneInfo.from_state(state["scene"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise NeuralFieldsError(f"{path}: not a splat checkpoint ({type(exc).__name__}: {exc})") from None
    return SplatModel(scene, info, cfg).to(device), state
