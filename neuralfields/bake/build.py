"""Baking a trained model: which blocks to keep, and their lattice values.

A block is kept where the trained model itself shows matter: training rays are rendered with
the run's own sampler and field (the one sample path everyone uses), and every block in which
some sample carried a visible rendering weight is kept, grown by one block so trilinear blends
and coarse steps near its faces see it (SNeRG and PlenOctrees cull by training-view visibility
the same way). Probing the density alone would keep what the live renderer never shows: space
the run's occupancy grid or proposal networks skip, where a hash-grid field's density is
unconstrained, and the inside of solid matter. The kept blocks' lattice points then get the
field's raw density and geometry features. Both stages report their progress (:class:`BakeProgress`),
and the bake's size is known, as an estimate, between them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field as dataclass_field
from typing import Callable

import torch
from tqdm import tqdm

from ..encodings.hashgrid import finest_resolution
from ..errors import NeuralFieldsError
from ..scene_model import SceneModel
from ..render.rays import RayBatch
from ..render.samplers import sampler_for
from ..render.space import space_name
from .lattice import BlockLattice, block_ids, cell_groups, dilate, lattice_points
from .placement import PLACEMENTS
from .sampler import MarchConfig


FEATURE_CAP = 512  # automatic lattice resolution with features (34 bytes per point) ...
DENSITY_CAP = 1024  # ... and with density alone (4 bytes)
MAX_RESOLUTION = 1024  # lattice ids are float32 arithmetic (see lattice.locate)


@dataclass
class BakeConfig:
    """What a bake keeps and how it renders (saved in the bake file)."""

    # Lattice cells per axis of the field cube; 0: the field's finest grid resolution, at most 512
    # with features (coarser lattices blur lego visibly) and 1024 for density alone (a ninth of
    # the bytes per point, and the fox's fine grid loses far less at 1024 than at 512); docs/bake.md.
    resolution: int = 0
    block: int = 8  # cells per block edge
    group: int = 4  # cells per edge of the groups rays step through (divides block)
    visibility_rays: int = 1 << 19  # training rays rendered to find the blocks that show
    min_weight: float = 1e-3  # a block shows when one of those rays puts this much weight in it
    dilation: int = 1  # blocks added around every shown block
    min_cell_alpha: float = 1e-3  # cells stopping less light than this are skipped when marching
    ray_color_below: float = 0.02  # lighter samples share one colour per ray (see render.shading)
    # Where the colour head's input features come from: "lattice" (cached beside the density) or
    # "live" (the trained field, at the samples that get a colour; the lattice holds density
    # only); "auto": live when the field's finest grid is finer than a feature lattice can afford
    # (512 cells: a 512-cell feature lattice blurred the fox's 1024-cell texture; docs/bake.md).
    features: str = "auto"
    chunk_rays: int = 1 << 16  # rays rendered at once (a 256x256 view in one chunk)
    march: MarchConfig = dataclass_field(default_factory=MarchConfig)

    def resolved(self, field) -> "BakeConfig":
        """A copy with the resolution and feature source chosen for ``field`` where they are auto."""
        features = self.features
        if features == "auto":
            features = "live" if finest_resolution(field) > FEATURE_CAP else "lattice"
        resolution = self.resolution or auto_resolution(field, self.block,
                                                        FEATURE_CAP if features == "lattice" else DENSITY_CAP)
        return dataclasses.replace(self, resolution=resolution, features=features).check()

    def check(self) -> "BakeConfig":
        if self.features not in ("auto", "lattice", "live"):
            raise NeuralFieldsError(f"bake features '{self.features}': choose auto, lattice or live")
        if self.resolution > MAX_RESOLUTION or (self.resolution and self.resolution // self.group > 256):
            raise NeuralFieldsError(f"bake resolution {self.resolution}: at most {MAX_RESOLUTION} cells across, in "
                                    f"groups of at most 256 per axis (the lattice indexes in float32, exact to 2^24)")
        bad_resolution = self.resolution and (self.resolution % self.block or self.resolution < 2 * self.block)
        if self.block < 1 or bad_resolution or self.block % self.group:  # resolution 0: chosen per field
            raise NeuralFieldsError(f"bake resolution {self.resolution} must be a multiple of the block size "
                                    f"{self.block} and at least two blocks, "
                                    f"and the group size {self.group} must divide the block size")
        return self


@dataclass
class BakeProgress:
    """How far a bake is, for progress bars: ``done`` of ``total`` ``unit`` of ``stage`` (in words);
    ``expected_bytes``, once the blocks that show are known, is the bake's estimated size
    (:func:`expected_nbytes`)."""

    stage: str
    done: int
    total: int
    unit: str
    expected_bytes: int | None = None


Report = Callable[[BakeProgress], None]
SHOW_STAGE = "finding the blocks that show"
FILL_STAGE = "filling the lattice"


def auto_resolution(field, block: int = 8, cap: int = 512, fallback: int = 256) -> int:
    """:func:`finest_resolution` rounded up to whole blocks and at most ``cap``; ``fallback`` for
    fields without a grid."""
    finest = finest_resolution(field)
    res = min(finest, cap) if finest else fallback
    return max(2 * block, -(-res // block) * block)


@torch.no_grad()
def visible_blocks(model: SceneModel, cfg: BakeConfig, chunk: int = 8192, progress: bool = False,
                   seed: int = 0, report: Report | None = None) -> torch.Tensor:
    """``[nb, nb, nb]`` bool (z, y, x): blocks where rendered training rays put weight ``>= min_weight``
    (the bake keeps them grown by ``dilation`` blocks).

    ``visibility_rays`` random pixels, spread evenly over the training cameras, are rendered with
    the model's own renderer; each camera's rays carry its image id (appearance codes)."""
    device = model.device
    nb = cfg.resolution // cfg.block
    best = torch.zeros(nb**3, device=device)
    cameras = model.info.cameras
    per_camera = max(1, math.ceil(cfg.visibility_rays / len(cameras)))
    generator = torch.Generator(device=device).manual_seed(seed)
    model.field.eval()
    bar = tqdm(total=len(cameras), desc="bake: visible blocks", unit="view", disable=not progress, dynamic_ncols=True)
    for i in range(len(cameras)):
        camera = cameras[torch.tensor([i])].to(device)
        pixels = int(camera.width[0]) * int(camera.height[0])
        picked = torch.randint(0, pixels, (min(per_camera, pixels),), generator=generator, device=device)
        for start in range(0, len(picked), chunk):
            pix = picked[start:start + chunk]
            out = model.render_rays(RayBatch.from_pixels(camera, 0, pix, image_id=i))
            best.scatter_reduce_(0, block_ids(out.per_sample.x, cfg.resolution, cfg.block), out.weights, "amax")
        bar.update()
        if report is not None:
            report(BakeProgress(SHOW_STAGE, i + 1, len(cameras), "views"))
    bar.close()
    return best.reshape(nb, nb, nb) >= cfg.min_weight


@torch.no_grad()
def bake_lattice(model: SceneModel, keep: torch.Tensor, cfg: BakeConfig, batch: int = 256,
                 report: Report | None = None) -> BlockLattice:
    """The lattice of the blocks ``keep [nb, nb, nb]`` that hold a cell worth sampling.

    Blocks are filled ``batch`` at a time: the field's raw density and features at their lattice
    points; a cell is worth sampling when its densest corner stops at least ``min_cell_alpha``
    of the light crossing it and the run's sampler would put samples there."""
    device, b = model.device, cfg.block
    ids = keep.reshape(-1).nonzero()[:, 0]
    min_tau = -math.log1p(-cfg.min_cell_alpha)
    kept, densities, features, cells = [], [], [], []
    for start in range(0, len(ids), batch):
        if report is not None:
            report(BakeProgress(FILL_STAGE, start, len(ids), "blocks"))
        part = ids[start:start + batch]
        points = lattice_points(part, cfg.resolution, b)
        raw, geo = model.field.raw_density(points)
        grid = points.reshape(len(part), b + 1, b + 1, b + 1, 3)  # (z, y, x)
        # A cell's length in world units (contracted cells grow with distance): its block's world
        # diagonal over the block's cell diagonal.
        world = model.space.inverse(grid[:, [0, -1], [0, -1], [0, -1]].reshape(-1, 3)).reshape(len(part), 2, 3)
        length = (world[:, 1] - world[:, 0]).norm(dim=-1) / (b * math.sqrt(3))
        sigma = model.field.density_activation(raw).reshape(len(part), 1, b + 1, b + 1, b + 1)
        densest = torch.nn.functional.max_pool3d(sigma, 2, 1)[:, 0]  # [k, b, b, b]
        occupied = (densest * length[:, None, None, None] >= min_tau).reshape(len(part), -1)
        # Only where the run's sampler places samples: elsewhere the field's density was never
        # trained (a hash grid's collisions leave it anything) and the live render never sees it.
        centres = grid[:, :-1, :-1, :-1].reshape(-1, 3) + 1.0 / cfg.resolution
        occupied &= model.sampler.may_sample(centres, length.repeat_interleave(b**3)).reshape(len(part), -1)
        used = occupied.any(1)  # blocks without such a cell are never sampled: no rows
        kept.append(part[used])
        densities.append(raw.reshape(len(part), -1)[used].reshape(-1))
        if cfg.features == "lattice":
            features.append(geo.reshape(len(part), -1, geo.shape[-1])[used].reshape(-1, geo.shape[-1]))
        cells.append(occupied[used].reshape(-1))
    kept_ids = torch.cat(kept) if kept else ids
    block_index = torch.full((keep.numel(),), -1, dtype=torch.int32, device=device)
    block_index[kept_ids] = torch.arange(len(kept_ids), dtype=torch.int32, device=device)
    cat = (lambda parts, *shape: torch.cat(parts) if parts else torch.zeros(*shape, device=device))
    cells, density = cat(cells, 0).bool(), cat(densities, 0)
    groups = cell_groups(cells, block_index, cfg.resolution, b, cfg.group)
    if cfg.features == "lattice":
        features = cat(features, 0, model.field.geo_dim)
    else:  # live features: the lattice holds density only
        features = torch.zeros(len(density), 0, device=device)
    return BlockLattice(cfg.resolution, b, block_index, density, features, cells, cfg.group, groups)


@dataclass
class Bake:
    """What a bake caches: the field on a lattice, and the tensors the run's sampler renders with
    (``sampler`` names its entry in :data:`~neuralfields.bake.placement.PLACEMENTS`)."""

    lattice: BlockLattice
    sampler: str
    sampler_state: dict[str, torch.Tensor]

    @property
    def nbytes(self) -> int:
        return self.lattice.nbytes + sum(t.numel() * t.element_size() for t in self.sampler_state.values())

    def state(self) -> dict:
        return {"lattice": self.lattice.state(), "sampler": self.sampler,
                "sampler_state": {k: v.cpu() for k, v in self.sampler_state.items()}}

    @staticmethod
    def from_state(state: dict) -> "Bake":
        return Bake(BlockLattice.from_state(state["lattice"]), state["sampler"], dict(state["sampler_state"]))

    @property
    def placement(self):
        return PLACEMENTS[self.sampler]

    def sampler_module(self, model: SceneModel, march: MarchConfig) -> torch.nn.Module:
        """The sampler that renders ``model``'s scene from this bake (its lattice on the model's device)."""
        return self.placement.build(model, self.lattice, self.sampler_state, march)


def expected_nbytes(blocks: int, cfg: BakeConfig, geo_dim: int, cached: dict[str, torch.Tensor]) -> int:
    """Bytes (:attr:`Bake.nbytes`) of a bake whose lattice keeps ``blocks`` blocks, with the
    sampler's cache ``cached``.

    Before filling, :func:`bake` passes the number of blocks that show: filling keeps about those,
    since the blocks grown around them rarely hold a cell worth sampling and are dropped."""
    b = cfg.block
    point_bytes = 4 + (2 * geo_dim if cfg.features == "lattice" else 0)  # float32 density, float16 features
    per_block = (b + 1) ** 3 * point_bytes + b**3  # lattice points and cell flags
    dense = (cfg.resolution // b) ** 3 * 4 + (cfg.resolution // cfg.group) ** 3  # block index (int32), group flags
    return int(blocks) * per_block + dense + sum(t.numel() * t.element_size() for t in cached.values())


def bake(model: SceneModel, cfg: BakeConfig | None = None, progress: bool = False,
         report: Report | None = None) -> Bake:
    """Bake a trained static model (see the module doc); ``report`` follows its progress."""
    if model.info.dynamic:
        raise NeuralFieldsError("dynamic runs are not baked: they render with the live field (a bake holds one time)")
    if model.field.in_dim != 3:
        raise NeuralFieldsError(f"only 3D fields are baked (this field takes {model.field.in_dim}-D points)")
    cfg = (cfg or BakeConfig()).resolved(model.field)
    name = sampler_for(model.cfg.render.sampler, model.space.unbounded)
    placement = PLACEMENTS[name]
    if placement.box_spaces_only and not model.space.fused:
        raise NeuralFieldsError(f"baking a '{name}' sampler run in render.space={space_name(model.space)} is not "
                                "supported; render with --exact (the live field), or train with the proposal sampler")
    cached = placement.cache(model)
    shown = visible_blocks(model, cfg, progress=progress, report=report)
    expected = expected_nbytes(int(shown.sum()), cfg, model.field.geo_dim, cached)
    sized = None if report is None else (lambda step: report(dataclasses.replace(step, expected_bytes=expected)))
    return Bake(bake_lattice(model, dilate(shown, cfg.dilation), cfg, report=sized), name, cached)
