"""Geometry for the 3D tab: a GLB mesh and Gaussian splats, both cut to the page's crop box.

Both are files the browser renders itself (``gr.Model3D``: Babylon.js for GLB, gsplat.js for
``.splat``), so turning them costs no server round trip. The crop box is in world units and
defaults to the scene box; the export functions guarantee their output lies inside it.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

from neuralfields.errors import NeuralFieldsError
from neuralfields.export.crop import check_box
from neuralfields.export.mesh import MESHERS, MeshConfig, export_mesh, save_mesh
from neuralfields.export.pointcloud import PointCloudConfig, export_pointcloud
from neuralfields.export.splat import save_splat, scene_transform

from .core import Viewer, view_time
from .navigation import check_number
from .runs import LoadedRun

MESH_MODULES = ("skimage", "trimesh")  # the mesh extra: marching cubes and GLB writing
SPLAT_MODULES = ("trimesh", "scipy")  # point export and nearest-neighbour splat sizes


def scene_box(run: LoadedRun) -> list[float]:
    """``[xmin, ymin, zmin, xmax, ymax, zmax]`` of the run's scene box: the crop inputs' defaults."""
    return [round(float(v), 4) for v in run.model.info.aabb.reshape(-1).tolist()]


def crop_box(run: LoadedRun, values) -> list[float]:
    """The six crop inputs as a box; an empty input takes the scene box's value."""
    default = scene_box(run)
    box = [default[i] if v is None or v == "" else v for i, v in enumerate(values)]
    return check_box(box, "crop box").reshape(-1).tolist()


def require(modules: tuple[str, ...], what: str, extra: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise NeuralFieldsError(f"{what} needs {', '.join(missing)}: pip install 'neuralfields[{extra}]'")


def mesh_glb(viewer: Viewer, run: LoadedRun, method, resolution, time_value, crop) -> tuple[Path, str]:
    """A GLB mesh of ``run`` inside ``crop`` and a status line."""
    require(MESH_MODULES, "mesh export", "mesh")
    if method not in MESHERS:
        raise NeuralFieldsError(f"unknown mesh method '{method}'; choose from {', '.join(MESHERS)}")
    res = int(check_number(resolution, "mesh resolution", 8, viewer.cfg.max_mesh_resolution))
    cfg = MeshConfig(method=method, resolution=res, time=view_time(run, time_value), simplify=viewer.cfg.mesh_faces,
                     crop=crop_box(run, crop))
    start = time.perf_counter()
    with viewer.lock:
        mesh = export_mesh(run.model, cfg)
    if len(mesh.faces) == 0:
        raise NeuralFieldsError("the mesh is empty: no surface inside the crop box at this level (train longer?)")
    out = save_mesh(mesh, viewer.files.new("mesh", ".glb"), "glb")
    lo, hi = np.asarray(mesh.bounds)
    return out, (f"{len(mesh.faces):,} faces, {len(mesh.vertices):,} vertices ({method}, resolution {res}) in "
                 f"{time.perf_counter() - start:.1f} s; bounds {_box_text(lo, hi)}")


def splats(viewer: Viewer, run: LoadedRun, time_value, crop) -> tuple[Path, str]:
    """A ``.splat`` file of ``run``'s rendered surface inside ``crop`` and a status line."""
    require(SPLAT_MODULES, "splat export", "mesh")
    cams = run.model.info.cameras
    longest = max(int(cams.width[0]), int(cams.height[0]))
    cfg = PointCloudConfig(views=viewer.cfg.splat_views, downscale=max(1.0, longest / viewer.cfg.splat_side),
                           max_points=viewer.cfg.splat_points, time=view_time(run, time_value),
                           crop=crop_box(run, crop))
    start = time.perf_counter()
    with viewer.lock:
        points, colors = export_pointcloud(run.model, cfg)
    out = save_splat(points, colors, viewer.files.new("splats", ".splat"), transform=scene_transform(run.model.info))
    return out, (f"{len(points):,} splats from {cfg.views} views in {time.perf_counter() - start:.1f} s; "
                 f"bounds {_box_text(points.min(0), points.max(0))}")


def _box_text(lo, hi) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in lo) + ")..(" + ", ".join(f"{v:.3g}" for v in hi) + ")"
