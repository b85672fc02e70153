"""The scene model: the one ``nn.Module`` a run is (field, space, sampler, appearance codes).

It owns its parts (and, when the run refines its cameras, their pose corrections) and is asked
for everything a caller needs: ``render_rays``,
``render_camera``, ``density`` (the function its sampler is handed), ``param_groups``,
``training_hooks`` and ``extra_losses``; nobody reaches through it to hand the field back in.
Training builds one with :func:`build_model` from a config and the training scene; every
consumer of a finished run (eval, render, export, viewer, distillation) rebuilds it from the run
folder with :func:`load_model`, without reading the dataset again: the checkpoint carries the
scene box, the cascade count, whether the scene is dynamic and the training cameras.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from . import distributed
from .camera_refinement import CameraCorrections, refine_cameras
from .cameras import Cameras
from .config import RenderConfig, RunConfig, load_run_config
from .data.scene import Scene, background_color
from .device import module_device
from .errors import NeuralFieldsError, file_error
from .fields import Field, build_field
from .fields.appearance import AppearanceCodes
from .render import SAMPLERS, SPACES, GridUpdate, OccupancyGrid, PackedSamples, RayBatch, RenderOutputs, density_at, shade
from .render.samplers import sampler_for, settings_from
from .data.normalize import NEAR_PLANE_FRACTION
from .render.space import NDCFrame, ndc_frame, space_for
from .run.checkpoints import latest_checkpoint, load_checkpoint


@dataclass
class SceneInfo:
    """What a model must know about its scene (saved in every checkpoint; kept on the CPU)."""

    aabb: Tensor  # [2, 3]
    aabb_scale: float
    dynamic: bool
    cameras: Cameras  # training cameras (camera paths and the viewer start from them)
    times: Tensor | None = None  # [N] training times for dynamic scenes
    kind: str = "object"  # object | unbounded | forward (Scene.kind): picks the space when render.space is auto
    # Whether the training images are photographs (not the blender layout's renders, no alpha):
    # train.camera_refinement = auto refines their cameras (neuralfields.camera_refinement).
    photographs: bool = False
    # The reference camera of NDC (render.space = ndc): made from the training cameras when they
    # face forward and the scene's near bounds are known (see forward_frame); None otherwise.
    ndc: NDCFrame | None = None

    @staticmethod
    def from_scene(scene: Scene) -> "SceneInfo":
        kind = scene.kind if scene.kind in ("object", "forward") else "unbounded"
        return SceneInfo(scene.aabb.clone(), float(scene.aabb_scale), scene.is_dynamic, scene.cameras,
                         None if scene.times is None else scene.times.clone(), kind,
                         scene.format != "blender" and not scene.has_alpha, forward_frame(scene))

    @property
    def inner_aabb(self) -> Tensor:
        """``[2, 3]`` the object box: the scene box shrunk ``aabb_scale`` times around its centre."""
        centre, half = self.aabb.mean(0), (self.aabb[1] - self.aabb[0]) / 2 / max(self.aabb_scale, 1.0)
        return torch.stack([centre - half, centre + half])

    def state_dict(self) -> dict:
        cams = {k: getattr(self.cameras, k) for k in Cameras._fields()}
        return {"aabb": self.aabb, "aabb_scale": self.aabb_scale, "dynamic": self.dynamic, "cameras": cams,
                "times": self.times, "kind": self.kind, "photographs": self.photographs,
                "ndc": None if self.ndc is None else self.ndc.state_dict()}

    @staticmethod
    def from_state(state: dict) -> "SceneInfo":
        cams = Cameras(**{k: v.cpu() for k, v in state["cameras"].items()})
        times = state.get("times")
        return SceneInfo(state["aabb"].cpu(), state["aabb_scale"], state["dynamic"], cams,
                         None if times is None else times.cpu(), state.get("kind", "object"), state.get("photographs", False),
                         NDCFrame.from_state(state.get("ndc")))


def forward_frame(scene: Scene) -> NDCFrame | None:
    """The NDC reference camera of ``scene``'s cameras (their average pose, the near plane at
    ``NEAR_PLANE_FRACTION`` of the nearest depth they see, x/y sized to their frustums beyond
    that depth), or None
    when the near depths are unknown or NDC cannot hold what the cameras see."""
    near = scene.near_depths
    if near is None or len(scene) == 0 or scene.is_dynamic:
        return None
    cams = scene.cameras
    w, h = cams.width.float(), cams.height.float()
    corners = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
    index = torch.arange(len(cams))
    dirs = torch.stack([cams.rays(index, w * cu, h * cv)[1] for cu, cv in corners], 1)  # [N, 4, 3]
    return ndc_frame(cams.c2w, dirs, NEAR_PLANE_FRACTION * float(near.min()), float(near.min()))


# Buffers render_camera can produce, with their channel counts.
RENDER_OUTPUTS: dict[str, int] = {"rgb": 3, "depth": 1, "opacity": 1, "normal": 3}

Hook = Callable[[int], None]  # (step) -> None, run before every training step


class SceneModel(nn.Module):
    """The one module a run is: field, coordinate space, sampler and appearance codes, and the
    scene facts to rebuild them (``info``, ``cfg``). Everything that renders asks it.

    Args:
        field: maps field points (and times, directions) to density and colour.
        space: world -> field coordinates; sampler: places samples along rays (knows no field).
        info: the scene (box, cameras, times); cfg: the run config it was built from.
        appearance: per-image codes when the field's colour head reads them.
        camera_corrections: learned pose corrections of the training cameras when the run refines
            them (:mod:`neuralfields.camera_refinement`): rays that carry training image ids are
            corrected before sampling. ``info.cameras`` composed with them are the training poses;
            :func:`load_model` folds them into ``info.cameras`` (and zeroes them), so that every
            consumer of a finished run (render, export, viewer, bake) reads refined poses there.
        render: the render settings in use (default ``cfg.render``; a bake renders whole views).
        ray_color_below: deferred shading of light samples (baked fields; see :func:`shade`).
    """

    def __init__(self, field: Field, space: nn.Module, sampler: nn.Module, info: SceneInfo, cfg: RunConfig,
                 appearance: AppearanceCodes | None = None, render: RenderConfig | None = None,
                 ray_color_below: float = 0.0, camera_corrections: CameraCorrections | None = None):
        super().__init__()
        self.field, self.space, self.sampler, self.appearance = field, space, sampler, appearance
        self.camera_corrections = camera_corrections
        self.info, self.cfg = info, cfg
        self.render = render or cfg.render
        self.ray_color_below = ray_color_below

    # ------------------------------------------------------------------------------ facts
    @property
    def grid(self) -> OccupancyGrid | None:
        """The sampler's occupancy grid when it lies in world space (exporters crop and cull with
        it); None for samplers without one or with a grid over contracted space."""
        return self.sampler.world_grid

    @property
    def device(self) -> torch.device:
        return module_device(self.field)

    @property
    def background(self) -> Tensor:
        return background_color(self.cfg.data.background)

    @property
    def num_parameters(self) -> int:
        return self.field.num_parameters

    # ---------------------------------------------------------------------------- density
    def density(self, points: Tensor, times: Tensor | None = None) -> Tensor:
        """``sigma [N]`` at world ``points [N, 3]`` and ``times [N, 1]`` (or one time, or None): the
        density function samplers are handed."""
        return density_at(self.field, self.space, points, times)

    def density_fn(self, time: float | None = None) -> Callable[[Tensor], Tensor]:
        """``world points [N, 3] -> sigma [N]`` at one time (static fields ignore it)."""
        return lambda x: self.density(x, time)

    # -------------------------------------------------------------------------- rendering
    def corrected(self, rays: RayBatch) -> RayBatch:
        """``rays`` with the learned pose correction of their training image (rays without image
        ids, or of no training image, and models that do not refine cameras: as they are)."""
        if self.camera_corrections is None or rays.image_ids is None:
            return rays
        origins, dirs = self.camera_corrections.apply(rays.image_ids, rays.origins, rays.dirs)
        return replace(rays, origins=origins, dirs=dirs)

    def render_rays(self, rays: RayBatch, training: bool = False, normals: bool = False) -> RenderOutputs:
        """Sample and shade ``rays`` (jittered samples when ``training``), after the pose correction
        of their training images; the sampler's own outputs ride along in ``out.aux`` for
        :meth:`extra_losses`."""
        rays = self.corrected(rays)
        samples, aux = self.sampler.sample(rays, self.density, training)
        light = 0.0 if training else self.render.skip_color_below
        out = shade(self.field, self.space, samples, rays, normals=normals, appearance=self.appearance,
                    skip_color_below=light, ray_color_below=0.0 if training else self.ray_color_below)
        out.aux = aux
        return out

    def shade(self, samples: PackedSamples, rays: RayBatch, composite_background: bool = True) -> RenderOutputs:
        """Shade given ``samples`` of ``rays`` with this model's field, space and codes (another
        sampler placed them: a teacher's in distillation, short rays through mesh vertices)."""
        return shade(self.field, self.space, samples, rays, composite_background=composite_background,
                     appearance=self.appearance)

    @torch.no_grad()
    def render_camera(self, cameras: Cameras, index: int, time: float | None = None,
                      outputs: Sequence[str] | None = None, chunk: int | None = None,
                      image_id: int | None = None, background: Tensor | None = None) -> dict[str, Tensor]:
        """Render one full image of ``cameras[index]`` over the run's background, in chunks of rays
        on the model's device (memory beyond the output buffers stays bounded at any resolution).

        ``outputs`` picks buffers among ``rgb [H, W, 3]``, ``depth [H, W]``, ``opacity [H, W]``
        and ``normal [H, W, 3]`` (world-space unit normals); default: the first three. Buffers
        are returned on the CPU. ``image_id`` renders with that training image's appearance code
        (default: the code of novel views). ``background [3]`` replaces the run's (zeros leave the
        colour premultiplied).
        """
        outputs = tuple(outputs) if outputs is not None else ("rgb", "depth", "opacity")
        unknown = [o for o in outputs if o not in RENDER_OUTPUTS]
        if unknown:
            raise ValueError(f"unknown render outputs {unknown}; available: {', '.join(RENDER_OUTPUTS)}")
        self.field.eval()
        device = self.device
        # Cameras live on the host: their size and distortion flag are read there, not from the device.
        w, h = torch.cat([cameras.width[index:index + 1], cameras.height[index:index + 1]]).tolist()
        camera = cameras[torch.tensor([index])].to(device)
        chunk = chunk or self.render.chunk_rays
        n = w * h
        background = (self.background if background is None else background).to(device)
        # One buffer on the device holds every output until the view is done: one copy to the host
        # per view, not one per buffer and chunk.
        widths = [RENDER_OUTPUTS[k] for k in outputs]
        view = torch.empty(n, sum(widths), device=device)
        for start in range(0, n, chunk):
            pixels = torch.arange(start, min(start + chunk, n), device=device)
            rays = RayBatch.from_pixels(camera, 0, pixels, time, image_id, background)
            out = self.render_rays(rays, normals="normal" in outputs)
            view[start:start + len(pixels)] = torch.cat([out.buffer(k).reshape(len(pixels), -1) for k in outputs], -1)
        parts = view.cpu().reshape(h, w, -1).split(widths, dim=-1)
        return {k: part.squeeze(-1) if RENDER_OUTPUTS[k] == 1 else part for k, part in zip(outputs, parts)}

    # --------------------------------------------------------------------------- training
    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimiser groups of everything trained: the field, the sampler's own networks, the codes,
        the camera corrections (their own rate and decay: ``train.camera_lr``, ``camera_weight_decay``)."""
        groups = self.field.param_groups(lr, weight_decay) + self.sampler.param_groups(lr)
        if self.appearance is not None:
            groups.append({"params": list(self.appearance.parameters()), "lr": lr, "weight_decay": 0.0})
        if self.camera_corrections is not None:
            t = self.cfg.train
            groups += self.camera_corrections.param_groups(t.camera_lr, t.camera_weight_decay)
        return groups

    def training_hooks(self) -> list[Hook]:
        """What must run before every training step: the sampler's update at its own cadence. Under
        torchrun every rank updates and rank 0's state is broadcast, so all ranks march alike."""
        def update_sampler(step: int) -> None:
            if self.sampler.update(step, self.density):
                distributed.broadcast(list(self.sampler.buffers()))  # no-op for a single process

        return [update_sampler]

    def extra_losses(self, out: RenderOutputs) -> dict[str, Tensor]:
        """Losses beside the photometric one: the field's regulariser and the sampler's own."""
        losses = {}
        regularization = self.field.regularization()
        if regularization is not None:
            losses["regularization"] = regularization
        losses.update(self.sampler.losses(out.aux, out.weights))
        return losses

    # ------------------------------------------------------------------------ checkpoints
    def state_dict(self, *args, **kwargs) -> dict:
        """The checkpoint entries of the model: ``field``, ``sampler``, ``scene`` (+ ``appearance``,
        ``camera_corrections``)."""
        state = {"field": self.field.state_dict(), "sampler": self.sampler.state_dict(), "scene": self.info.state_dict()}
        if self.appearance is not None:
            state["appearance"] = self.appearance.state_dict()
        if self.camera_corrections is not None:
            state["camera_corrections"] = self.camera_corrections.state_dict()
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Field and sampler state from a checkpoint (older checkpoints store the grid as ``grid``)."""
        self.field.load_state_dict(state["field"])
        if self.appearance is not None:
            self.appearance.load_state_dict(state["appearance"])
        if self.camera_corrections is not None:
            if "camera_corrections" not in state:
                raise RuntimeError("the config refines cameras but the checkpoint has no camera corrections")
            self.camera_corrections.load_state_dict(state["camera_corrections"])
        if "sampler" in state:
            self.sampler.load_state_dict(state["sampler"])
        else:
            self.sampler.grid.load_state_dict(state["grid"])


    @torch.no_grad()
    def fold_camera_corrections(self) -> None:
        """Move the learned corrections into ``info.cameras`` (the refined training poses) and zero
        them: rays rendered from ``info.cameras`` with training image ids stay where they were."""
        if self.camera_corrections is None:
            return
        cams = self.info.cameras
        refined = self.camera_corrections.c2w(cams.c2w.to(self.camera_corrections.delta.device)).to(cams.c2w)
        self.info = replace(self.info, cameras=replace(cams, c2w=refined.contiguous()))
        self.camera_corrections.delta.zero_()


def grid_schedule(cfg: RunConfig) -> GridUpdate:
    t = cfg.train
    return GridUpdate(t.grid_update_every, t.grid_warmup_steps, t.grid_ema_decay, t.density_threshold)


def build_model(cfg: RunConfig, info: SceneInfo, device: torch.device | str = "cpu") -> SceneModel:
    """Fresh field and sampler for a scene, on ``device``."""
    # The scene box (cameras inside it) is the box a contraction keeps as it is; everything
    # beyond it is squeezed into the shell around it.
    space = SPACES[space_for(cfg.render.space, info.kind)](info.aabb, ndc=info.ndc)
    # Contracted space gives the scene box half of the field's cube: twice the grid resolution keeps
    # the same detail per unit length there (the space's field_scale).
    field = build_field(cfg.field.name, cfg.field.options, in_dim=3, view_dependent=True,
                        aabb_scale=info.aabb_scale * space.field_scale, time_dependent=info.dynamic)
    if info.dynamic and not field.time_dependent:
        raise NeuralFieldsError(f"field '{cfg.field.name}' is static but the scene has per-frame times; choose a dynamic field")
    kind = SAMPLERS[sampler_for(cfg.render.sampler, space.unbounded)]
    sampler = kind(aabb=info.aabb, space=space, settings=settings_from(kind.Settings, cfg.render), near=cfg.data.near,
                   aabb_scale=info.aabb_scale, schedule=grid_schedule(cfg), times=info.times if info.dynamic else None)
    appearance = (AppearanceCodes(len(info.cameras), field.appearance_dim, cfg.train.appearance_dropout)
                  if field.appearance_dim else None)
    corrections = CameraCorrections(len(info.cameras)) if refine_cameras(cfg.train.camera_refinement, info.photographs) else None
    return SceneModel(field, space, sampler, info, cfg, appearance, camera_corrections=corrections).to(device)


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
    model.fold_camera_corrections()  # consumers read the refined training poses in info.cameras
    model.to(device)
    model.field.eval()
    return model, state
