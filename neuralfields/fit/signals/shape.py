"""Shapes: a mesh as values on a ``R^3`` grid at coordinates ``(x, y, z)`` in ``[-1, 1]^3``.

The mesh (``.ply``, ``.obj``, ``.glb``, ... through trimesh) is centred and scaled so that its
longest side spans ``[-0.9, 0.9]``; ``--size R`` sets the grid (default 64 cells a side). The
target is, as in WIRE's and SAPE's shape experiments, the occupancy of the grid's cell centres
(1 inside, 0 outside; :func:`~neuralfields.fit.meshes.inside_grid`), or with ``--target sdf`` the
signed distance truncated at :data:`TRUNCATION` and mapped to ``[0, 1]`` with the surface at 0.5
(inside above it), so that both read alike: the surface is the 0.5 level set.

Scores: IoU of the occupancy (prediction above 0.5) on the grid, as WIRE reports it; the Chamfer
distance between the mesh marching cubes extracts from the prediction and the input mesh
(Chamfer-L1 over surface samples, in units of the mesh's longest side); and PSNR of the values.
Written: the extracted mesh (``reconstruction.glb``, in the input mesh's own coordinates), a
shaded picture of it (``reconstruction.png``) and ``comparison.png`` (input | reconstruction).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from torch import Tensor

from ...atomic import atomic_path
from ...compiling import first_line
from ...errors import NeuralFieldsError, file_error
from ...run.metrics import psnr
from .. import meshes
from ..io import save_image
from .base import ReadOptions, Signal, check_size, register_signal, require

EXTENT = 0.9  # the mesh's longest side spans [-EXTENT, EXTENT]: marching cubes needs a margin
DEFAULT_RESOLUTION = 64
TRUNCATION = 0.1  # signed distances are clipped at this many units of the [-1, 1] box
SURFACE_SAMPLES = 30_000  # points per surface for the Chamfer distance
TARGETS = ("occupancy", "sdf")


def load_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(verts [V, 3] float64, faces [F, 3])`` of a mesh file (a scene's meshes joined), or a one-line error."""
    require(path, ("trimesh", "skimage", "scipy"), "mesh")  # reading; marching cubes; distances
    import trimesh

    try:
        mesh = trimesh.load(str(path), force="mesh")
    except Exception as exc:  # trimesh raises many kinds for a bad file
        raise file_error(path, f"cannot read mesh ({first_line(exc)})") from None
    faces = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64)
    if len(faces) == 0:
        raise file_error(path, "mesh has no faces (a point cloud cannot be fitted as a shape)")
    return np.asarray(mesh.vertices, dtype=np.float64), faces


@register_signal
class ShapeSignal(Signal):
    """Occupancy or truncated signed distance on a ``[R, R, R]`` grid (indexed ``[z, y, x]``)."""

    kind = "shape"
    suffixes = (".ply", ".obj", ".glb", ".gltf", ".stl", ".off")
    uses = frozenset({"size", "target"})
    subsample_hint = "--size R fits a grid of R^3 cells"

    def __init__(self, values: np.ndarray, verts: np.ndarray, faces: np.ndarray, target: str,
                 centre: np.ndarray, scale: float, source: str = ""):
        super().__init__(values, source)
        self.verts, self.faces, self.target = verts, faces, target  # the mesh in grid coordinates
        self.centre, self.scale = centre, scale  # grid coordinates = (mesh coordinates - centre) * scale
        self.surface = meshes.surface_points(verts, faces, SURFACE_SAMPLES, seed=1)[0]

    @classmethod
    def from_mesh(cls, verts: np.ndarray, faces: np.ndarray, resolution: int = DEFAULT_RESOLUTION,
                  target: str = "occupancy", source: str = "") -> "ShapeSignal":
        """The grid of a mesh ``verts [V, 3]``, ``faces [F, 3]`` at ``resolution`` cells a side."""
        lo, hi = verts.min(0), verts.max(0)
        centre, scale = (lo + hi) / 2, 2 * EXTENT / float((hi - lo).max())
        normalised = (verts - centre) * scale
        centres = (np.arange(resolution) + 0.5) / resolution * 2 - 1
        inside = meshes.inside_grid(normalised, faces, centres)  # [x, y, z]
        if target == "sdf":
            grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
            surface = meshes.surface_points(normalised, faces, max(200_000, 8 * resolution**2))[0]
            distance = meshes.distance_to(surface, grid).reshape(inside.shape)
            signed = np.where(inside, -distance, distance)
            values = 0.5 - 0.5 * np.clip(signed / TRUNCATION, -1, 1)
        else:
            values = inside.astype(np.float32)
        return cls(values.transpose(2, 1, 0)[..., None], normalised, faces, target, centre, scale, source)

    @classmethod
    def read(cls, path: Path, options: ReadOptions) -> "ShapeSignal":
        target = options.target or "occupancy"
        if target not in TARGETS:
            raise NeuralFieldsError(f"--target: expected one of {', '.join(TARGETS)}, got '{target}'")
        resolution = options.size or DEFAULT_RESOLUTION
        if resolution < 8:
            raise NeuralFieldsError(f"--size: a shape's grid needs at least 8 cells a side, got {resolution}")
        check_size(path, cls, resolution**3, 1, options.max_samples, f"shape grid of {resolution}^3")
        verts, faces = load_mesh(path)
        holes = meshes.open_edges(faces)
        if holes and target == "sdf":
            raise file_error(path, f"mesh is not watertight ({holes} open edges), so its inside and a signed distance "
                                   "are undefined; fit --target occupancy (inside by the majority of rays along x, y "
                                   "and z) or close the mesh")
        if holes:
            warnings.warn(f"{path}: mesh is not watertight ({holes} open edges); inside is the majority of rays along "
                          "x, y and z", stacklevel=2)
        return cls.from_mesh(verts, faces, resolution, target, str(path))

    @property
    def resolution(self) -> int:
        return self.grid[0]

    def field_defaults(self, field: str) -> dict:
        # WIRE's occupancy experiment: omega0 10, sigma0 40; the hash grid's finest level at the grid.
        gabor = {"backbone_options": {"omega": 10.0, "sigma": 40.0}}
        return {"wire": gabor, "wire-complex": gabor, "ngp": {"max_res": self.resolution}}.get(field, {})

    def extract(self, pred: Tensor) -> tuple[np.ndarray, np.ndarray] | None:
        """The 0.5 level set of predictions ``[N, 1]`` as ``(verts, faces)`` in grid coordinates, or None."""
        from ...export.volume import Volume, marching_cubes

        n = self.resolution
        volume = Volume(pred.reshape(self.grid).numpy().transpose(2, 1, 0), np.full(3, -1 + 1 / n), 2 / n)
        try:
            return marching_cubes(volume, 0.5)
        except NeuralFieldsError:  # nothing crosses 0.5: no surface yet
            return None

    def metrics(self, pred: Tensor) -> dict:
        occupied, truth = pred[:, 0] > 0.5, self.targets[:, 0] > 0.5
        union = (occupied | truth).sum().item()
        scores = {"psnr": psnr(pred, self.targets), "iou": (occupied & truth).sum().item() / max(union, 1)}
        surface = self.extract(pred)
        scores["chamfer"] = None if surface is None else \
            meshes.chamfer(meshes.surface_points(*surface, SURFACE_SAMPLES, seed=2)[0], self.surface) / (2 * EXTENT)
        return scores

    def write(self, pred: Tensor, out_dir: Path) -> dict[str, Path]:
        extent = 1.05 * float(np.abs((self.surface @ meshes.view_rotation().T)[:, :2]).max())
        truth = meshes.shaded_view(self.verts, self.faces, extent)
        surface = self.extract(pred)
        paths = {"comparison": out_dir / "comparison.png"}
        if surface is None:  # say so in the picture: the input beside an empty view
            save_image(paths["comparison"], np.concatenate([truth, np.ones_like(truth)], axis=1))
            return paths
        import trimesh

        verts, faces = surface
        paths["mesh"], paths["reconstruction"] = out_dir / "reconstruction.glb", out_dir / "reconstruction.png"
        with atomic_path(paths["mesh"]) as tmp:
            tmp.write_bytes(trimesh.Trimesh(verts / self.scale + self.centre, faces, process=False).export(file_type="glb"))
        picture = meshes.shaded_view(verts, faces, extent)
        save_image(paths["reconstruction"], picture)
        gap = np.ones((picture.shape[0], 4, 3), dtype=np.float32)
        save_image(paths["comparison"], np.concatenate([truth, gap, picture], axis=1))
        return paths

    def record(self) -> dict:
        return {"kind": self.kind, "target": self.target, "resolution": self.resolution,
                "faces": int(len(self.faces)), "open_edges": meshes.open_edges(self.faces)}

    def describe(self) -> str:
        n = self.resolution
        return f"shape: {self.source} ({len(self.faces):,} faces; {self.target} on a {n}x{n}x{n} grid)"
