"""Regular sample volumes and their level sets: shared by density meshing and TSDF fusion."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from ..errors import NeuralFieldsError


@dataclass
class Volume:
    """Values ``[nx, ny, nz]`` sampled at ``origin + index * voxel``."""

    values: np.ndarray
    origin: np.ndarray
    voxel: float


def grid_shape(box: Tensor, resolution: int) -> tuple[tuple[int, int, int], float]:
    """Sample counts per axis and voxel size for ``resolution`` samples along the longest side."""
    if resolution < 8 or resolution > 2048:
        raise NeuralFieldsError(f"--resolution must lie in [8, 2048], got {resolution}")
    extent = (box[1] - box[0]).double().numpy()
    voxel = float(extent.max()) / (resolution - 1)
    shape = tuple(int(max(2, math.ceil(e / voxel) + 1)) for e in extent)
    return shape, voxel


def marching_cubes(volume: Volume, level: float, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Level set where values rise above ``level``: world ``verts [V, 3]``, ``faces [F, 3]`` wound outwards.

    ``valid [nx, ny, nz]`` marks trustworthy samples: faces with a vertex on an edge that touches
    an invalid sample are dropped (skimage's own ``mask`` tests only one corner per cube).
    """
    from skimage import measure

    values = volume.values
    if not (values.min() < level < values.max()):
        raise NeuralFieldsError(f"no surface: the field never crosses level {level:.4g} in the box "
                                f"(values span {values.min():.4g} .. {values.max():.4g}); try another --threshold")
    verts, faces, normals, _ = measure.marching_cubes(values, level)  # in sample-index units
    if valid is not None:
        top = np.array(values.shape) - 1
        lo = np.clip(np.floor(verts).astype(np.int64), 0, top)
        hi = np.clip(np.ceil(verts).astype(np.int64), 0, top)
        ok = valid[tuple(lo.T)] & valid[tuple(hi.T)]
        faces = faces[ok[faces].all(1)]
        used = np.unique(faces)
        remap = np.full(len(verts), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        verts, normals, faces = verts[used], normals[used], remap[faces]
        if len(faces) == 0:
            raise NeuralFieldsError("no surface: the level set lies entirely in unobserved space")
    verts = verts * volume.voxel + volume.origin
    # Wind faces so their normals agree with the gradient normals (pointing out of matter).
    a, b, c = (verts[faces[:, i]] for i in range(3))
    face_n = np.cross(b - a, c - a)
    if (face_n * normals[faces].mean(1)).sum(-1).mean() < 0:
        faces = faces[:, ::-1]
    return verts, np.ascontiguousarray(faces)
