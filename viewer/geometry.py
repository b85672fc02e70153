"""Geometry for the 3D tab: a GLB mesh cut to the page's crop box.

The mesh is a file the browser renders itself (``gr.Model3D``: Babylon.js for GLB), so turning it
costs no server round trip. The crop box is in world units and defaults to the scene box; the
export guarantees its output lies inside it. (Splats: :mod:`.splats`.)
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

from neuralfields.errors import NeuralFieldsError
from neuralfields.export.crop import check_box
from neuralfields.export.mesh import MESHERS, MeshConfig, export_mesh, save_mesh

from .core import Viewer, view_time
from .navigation import check_number
from .runs import LoadedRun

MESH_MODULES = ("skimage", "trimesh")  # the mesh extra: marching cubes and GLB writing


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


def _box_text(lo, hi) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in lo) + ")..(" + ", ".join(f"{v:.3g}" for v in hi) + ")"
