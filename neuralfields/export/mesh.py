"""Triangle meshes from a trained field: marching cubes on density, or TSDF fusion of rendered depth.

Pipeline of :func:`export_mesh`:

1. box: ``--bbox``, else the occupied region of the occupancy grid's finest level (one cell of
   margin), clipped to the scene box, then narrowed to ``--crop`` (:mod:`.crop`);
2. raw surface from a registered mesher (``MESHERS``): ``marching-cubes`` samples the density on
   a regular grid (isotropic voxels, ``resolution`` samples along the longest side, queried in
   slabs and only inside occupied grid cells and the region the run's space covers: unoccupied
   cells hold density far below any useful level, and outside an NDC frustum the field means
   nothing) and extracts the level set at ``threshold``, by default the median density at the
   rendered depth of training views (:func:`auto_level`); ``tsdf`` fuses rendered depth maps
   (see :mod:`.tsdf`);
3. floaters removed: connected components with fewer faces than ``keep_fraction`` of the
   largest one are dropped;
4. optional simplification to ``simplify`` faces: quadric decimation when ``fast_simplification``
   is installed (``pip install fast-simplification``), else vertex clustering (:func:`cluster_vertices`);
5. trimmed to ``--crop``: faces with a vertex outside it are dropped (simplification may move
   vertices past the sampled box), so the mesh lies inside the crop;
6. vertex colours: the colour volume-rendered along a short ray through each vertex, looking
   along ``-normal`` from three voxels outside to three voxels inside (what a camera facing the
   surface would see there; the raw colour at the level set is poorly trained).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import NeuralFieldsError
from ..render.marching import PackedSamples
from ..render.rays import RayBatch
from .crop import crop_mesh, narrow
from .tsdf import TSDFConfig, tsdf_surface
from .views import default_time, render_views, training_views
from .volume import Volume, grid_shape, marching_cubes

MESH_FORMATS = ("ply", "obj", "glb")
Z_UP_TO_Y_UP = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])


@dataclass
class MeshConfig:
    method: str = "marching-cubes"  # a key of MESHERS
    resolution: int = 256  # samples along the longest side of the box
    threshold: float | None = None  # density level for marching cubes; None: estimated (auto_level)
    bbox: list[float] | None = None  # [xmin, ymin, zmin, xmax, ymax, zmax]; None: the occupied region
    crop: list[float] | None = None  # same layout, world units: the mesh is cut to lie inside it
    time: float | None = None  # dynamic runs: the time to mesh (default 0)
    keep_fraction: float = 0.05  # drop components with fewer faces than this fraction of the largest
    simplify: int | None = None  # target face count
    colors: bool = True
    chunk: int = 1 << 18  # points per field query
    tsdf: TSDFConfig = field(default_factory=TSDFConfig)


def density_level(model, cfg: MeshConfig) -> float:
    if cfg.threshold is not None:
        if cfg.threshold <= 0:
            raise NeuralFieldsError(f"--threshold must be positive, got {cfg.threshold}")
        return float(cfg.threshold)
    return auto_level(model, default_time(model.info, cfg.time))


@torch.no_grad()
def auto_level(model, time: float | None = None, views: int = 8, max_side: int = 64, opacity: float = 0.9,
               quantile: float = 0.25) -> float:
    """A density level whose level set passes through the rendered surface.

    Renders ``views`` training views (at most ``max_side`` pixels), places a point at the
    expected depth of every opaque pixel and returns the ``quantile`` of the density there, so
    the level set encloses three quarters of the rendered surface points (the median leaves
    holes where a young field's density is still soft). A fixed level cannot suit every run: how
    steeply density rises at a surface depends on the scene scale and on how far training has
    sharpened it, while the rendered depth is what the training images agree on.
    """
    cams = training_views(model.info, views)
    scale = max_side / max(int(cams.width[0]), int(cams.height[0]))
    if scale < 1:
        cams = cams.resized(max(1, round(int(cams.width[0]) * scale)), max(1, round(int(cams.height[0]) * scale)))
    density = model.density_fn(time)
    values = []
    for i, out in render_views(model, cams, time, ("depth", "opacity")):
        keep = out["opacity"] > opacity
        origins, dirs = cams.image_rays(i)
        values.append(density((origins[keep] + dirs[keep] * out["depth"][keep, None]).to(model.device)).cpu())
    values = torch.cat(values) if values else torch.zeros(0)
    if values.numel() < 16:
        raise NeuralFieldsError("cannot estimate a density level: the training views render (almost) empty; "
                                "pass --threshold")
    return float(torch.quantile(values.float(), quantile))


def occupied_box(grid) -> Tensor:
    """``[2, 3]`` world box around the occupied cells of the finest level (plus one cell), or the inner box."""
    r = grid.resolution
    occ = grid.binary[0].reshape(r, r, r)  # flat index = x + r (y + r z): axes come out as (z, y, x)
    idx = occ.nonzero()
    inner = grid.inner_aabb
    if len(idx) == 0:
        return inner.clone()
    zyx_lo, zyx_hi = idx.amin(0), idx.amax(0)
    lo = (zyx_lo.flip(0).float() - 1) / r
    hi = (zyx_hi.flip(0).float() + 2) / r
    box = torch.stack([grid.level_min[0] + lo * grid.level_size[0], grid.level_min[0] + hi * grid.level_size[0]])
    return torch.stack([torch.maximum(box[0], inner[0]), torch.minimum(box[1], inner[1])])


def resolve_box(model, bbox: list[float] | None) -> Tensor:
    aabb = model.info.aabb.float()
    if bbox is None:  # the occupied part of the grid; without a world-space grid, the object box
        # On the CPU, like the scene info: exporters read the box into NumPy (the grid may be on a GPU).
        return occupied_box(model.grid).cpu() if model.grid is not None else model.info.inner_aabb.float()
    box = torch.as_tensor(bbox, dtype=torch.float32)
    if box.numel() != 6 or not torch.isfinite(box).all():
        raise NeuralFieldsError(f"--bbox: expected 6 numbers xmin,ymin,zmin,xmax,ymax,zmax, got {bbox}")
    box = box.reshape(2, 3)
    if (box[1] <= box[0]).any():
        raise NeuralFieldsError(f"--bbox: each max must exceed its min, got {bbox}")
    clipped = torch.stack([torch.maximum(box[0], aabb[0]), torch.minimum(box[1], aabb[1])])
    if (clipped[1] <= clipped[0]).any():
        raise NeuralFieldsError(f"--bbox {bbox} lies outside the scene box {aabb.flatten().tolist()}")
    return clipped


@torch.no_grad()
def density_volume(model, box: Tensor, resolution: int, time: float | None = None, chunk: int = 1 << 18,
                   use_grid: bool = True) -> Volume:
    """Density sampled on a regular grid over ``box [2, 3]``, z-slab by z-slab (bounded memory)."""
    (nx, ny, nz), voxel = grid_shape(box, resolution)
    origin = box[0].double().numpy()
    values = np.zeros((nx, ny, nz), dtype=np.float32)
    density = model.density_fn(time)
    device = model.device
    xs = torch.as_tensor(origin[0] + voxel * np.arange(nx), dtype=torch.float32, device=device)
    ys = torch.as_tensor(origin[1] + voxel * np.arange(ny), dtype=torch.float32, device=device)
    slab = max(1, chunk // (nx * ny))
    model.field.eval()
    for z0 in range(0, nz, slab):
        zs = torch.as_tensor(origin[2] + voxel * np.arange(z0, min(z0 + slab, nz)), dtype=torch.float32, device=device)
        pts = torch.stack(torch.meshgrid(xs, ys, zs, indexing="ij"), -1).reshape(-1, 3)
        out = torch.zeros(pts.shape[0], device=device)
        keep = model.grid.lookup(pts) if use_grid and model.grid is not None else torch.ones(pts.shape[0], dtype=torch.bool, device=device)
        keep &= model.space.contains(pts)  # e.g. NDC covers only the frustum beyond its near plane
        for part in keep.nonzero()[:, 0].split(chunk):
            out[part] = density(pts[part]).float()
        values[:, :, z0:z0 + len(zs)] = out.reshape(nx, ny, len(zs)).cpu().numpy()
    return Volume(values, origin, voxel)


@dataclass
class RawSurface:
    """A mesher's output: world ``verts [V, 3]``, ``faces [F, 3]``, the voxel size and facts for metadata."""

    verts: np.ndarray
    faces: np.ndarray
    voxel: float
    info: dict = field(default_factory=dict)


def density_surface(model, cfg: MeshConfig, box: Tensor) -> RawSurface:
    level = density_level(model, cfg)
    volume = density_volume(model, box, cfg.resolution, default_time(model.info, cfg.time), cfg.chunk)
    verts, faces = marching_cubes(volume, level)
    return RawSurface(verts, faces, volume.voxel, {"level": level})


def fused_surface(model, cfg: MeshConfig, box: Tensor) -> RawSurface:
    verts, faces, voxel = tsdf_surface(model, cfg.tsdf, box, cfg.resolution, default_time(model.info, cfg.time))
    return RawSurface(verts, faces, voxel, {"views": cfg.tsdf.views, "truncation_voxels": cfg.tsdf.truncation})


MESHERS: dict[str, Callable[[object, MeshConfig, Tensor], RawSurface]] = {
    "marching-cubes": density_surface,
    "tsdf": fused_surface,
}


# ------------------------------------------------------------------------------------ clean-up


def remove_floaters(mesh, keep_fraction: float = 0.05):
    """Keep connected components with at least ``keep_fraction`` of the largest one's faces."""
    import trimesh

    if keep_fraction <= 0 or len(mesh.faces) == 0:
        return mesh
    parts = trimesh.graph.connected_components(mesh.face_adjacency, nodes=np.arange(len(mesh.faces)), min_len=1)
    largest = max(len(p) for p in parts)
    kept = [p for p in parts if len(p) >= keep_fraction * largest]
    if len(kept) == len(parts):
        return mesh
    faces = np.concatenate(kept)
    out = trimesh.Trimesh(mesh.vertices, mesh.faces[np.sort(faces)], process=False)
    out.remove_unreferenced_vertices()
    return out


def cluster_vertices(mesh, target_faces: int):
    """Vertex clustering: merge vertices per cubic cell sized so about ``target_faces`` remain.

    A surface of area A meshed at spacing s has about ``2 A / s^2`` triangles, which gives the
    first cell size; one correction pass rescales it from the face count actually reached.
    """
    import trimesh

    verts, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    cell = math.sqrt(2 * max(mesh.area, 1e-12) / max(target_faces, 1))
    out = mesh
    for _ in range(3):
        key = np.floor((verts - verts.min(0)) / cell).astype(np.int64)
        _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        merged = np.zeros((len(counts), 3))
        np.add.at(merged, inverse, verts)
        merged /= counts[:, None]
        f = inverse[faces]
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]  # collapsed triangles
        _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)  # duplicates
        f = f[np.sort(first)]
        out = trimesh.Trimesh(merged, f, process=False)
        out.remove_unreferenced_vertices()
        if len(f) <= 1.2 * target_faces:
            break
        cell *= math.sqrt(len(f) / target_faces)
    return out


def quadric_decimation(mesh, target_faces: int):
    return mesh.simplify_quadric_decimation(face_count=int(target_faces))


def simplify(mesh, target_faces: int | None, method: str = "auto"):
    """Reduce ``mesh`` to about ``target_faces`` faces (quadric when available, else clustering)."""
    if target_faces is None or len(mesh.faces) <= target_faces:
        return mesh
    if target_faces < 4:
        raise NeuralFieldsError(f"--simplify needs at least 4 faces, got {target_faces}")
    if method == "auto":
        try:
            import fast_simplification  # noqa: F401  (trimesh's quadric decimation backend)

            method = "quadric"
        except ImportError:
            method = "cluster"
    return SIMPLIFIERS[method](mesh, target_faces)


SIMPLIFIERS: dict[str, Callable] = {"quadric": quadric_decimation, "cluster": cluster_vertices}


# ------------------------------------------------------------------------------------ colours


@torch.no_grad()
def vertex_colors(model, verts: np.ndarray, normals: np.ndarray, voxel: float, time: float | None = None,
                  n_samples: int = 16, chunk: int = 1 << 14) -> np.ndarray:
    """``[V, 3]`` float colours rendered along ``-normal`` through each vertex (see module docstring)."""
    model.field.eval()
    device = model.device
    v = torch.as_tensor(verts, dtype=torch.float32, device=device)
    n = torch.as_tensor(normals, dtype=torch.float32, device=device)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    half = 3 * voxel
    edges = torch.linspace(0.0, 2 * half, n_samples + 1, device=device)
    out = torch.zeros_like(v)
    for sl in torch.arange(len(v), device=device).split(chunk):
        # Short rays entering the surface: from ``half`` outside to ``half`` inside each vertex.
        d = -n[sl]
        rays = RayBatch(v[sl] - d * half, d, None if time is None else torch.full((len(sl),), float(time), device=device))
        ray = torch.arange(len(sl), device=device).repeat_interleave(n_samples)
        t0 = edges[:-1].repeat(len(sl))
        t1 = edges[1:].repeat(len(sl))
        res = model.shade(PackedSamples(ray, t0, t1, len(sl)), rays, composite_background=False)
        opacity = res.opacity[:, None]
        # Where the short ray stays nearly transparent, use the colour at the vertex itself.
        centre = res.per_sample.rgb.reshape(len(sl), n_samples, -1)[:, n_samples // 2]
        out[sl] = torch.where(opacity > 0.05, res.rgb / opacity.clamp_min(1e-6), centre)
    return out.clamp(0, 1).cpu().numpy()


# ------------------------------------------------------------------------------------ entry points


def export_mesh(model, cfg: MeshConfig | None = None):
    """Extract a coloured, cleaned triangle mesh (``trimesh.Trimesh``) from a loaded ``SceneModel``."""
    import trimesh

    cfg = cfg or MeshConfig()
    if cfg.method not in MESHERS:
        raise NeuralFieldsError(f"--method: unknown method '{cfg.method}'; choose from {', '.join(MESHERS)}")
    box = resolve_box(model, cfg.bbox)
    if cfg.crop is not None:
        box = narrow(box, cfg.crop)
    grid_shape(box, cfg.resolution)  # reject a bad resolution before any rendering
    raw = MESHERS[cfg.method](model, cfg, box)
    mesh = trimesh.Trimesh(raw.verts, raw.faces, process=True)
    mesh = remove_floaters(mesh, cfg.keep_fraction)
    mesh = simplify(mesh, cfg.simplify)
    if cfg.crop is not None:
        mesh = crop_mesh(mesh, cfg.crop)
    if cfg.colors and len(mesh.vertices):
        rgb = vertex_colors(model, np.asarray(mesh.vertices), np.array(mesh.vertex_normals), raw.voxel,
                            default_time(model.info, cfg.time))
        alpha = np.ones((len(rgb), 1))
        mesh.visual.vertex_colors = (np.concatenate([rgb, alpha], 1) * 255 + 0.5).astype(np.uint8)
    mesh.metadata.update(raw.info, voxel_size=raw.voxel, method=cfg.method)
    return mesh


def mesh_format(out: Path, fmt: str | None) -> str:
    fmt = (fmt or out.suffix.lstrip(".") or "ply").lower()
    if fmt not in MESH_FORMATS:
        raise NeuralFieldsError(f"--format: unsupported mesh format '{fmt}'; choose from {', '.join(MESH_FORMATS)}")
    return fmt


def save_mesh(mesh, out: str | Path, fmt: str | None = None) -> Path:
    """Write ``mesh`` as PLY (binary), OBJ or GLB (the viewer's format); the suffix follows ``fmt``."""
    out = Path(out)
    fmt = mesh_format(out, fmt)
    if out.suffix.lower() != f".{fmt}":
        out = out.with_suffix(f".{fmt}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "obj":
        mesh.export(out, file_type="obj", include_color=True)
    elif fmt == "glb":
        # glTF is y-up by specification; scenes here are z-up (Blender/NeRF), so viewers would
        # show them lying on their side: rotate (x, y, z) -> (x, z, -y).
        upright = mesh.copy()
        upright.apply_transform(Z_UP_TO_Y_UP)
        upright.export(out, file_type="glb")
    else:
        mesh.export(out, file_type=fmt)
    return out
