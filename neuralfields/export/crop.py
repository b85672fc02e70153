"""Crop boxes for exported geometry: parse one, narrow a meshing box to it, keep what lies inside.

A crop box is ``[xmin, ymin, zmin, xmax, ymax, zmax]`` in world units (the run's own axes).
Meshes are sampled only inside it and then trimmed to it (simplification may nudge vertices),
point clouds keep the points inside it, so an export never reaches outside the crop.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import NeuralFieldsError


def check_box(values, flag: str = "--crop") -> np.ndarray:
    """``[2, 3]`` float64 ``(min, max)`` corners from six numbers; a one-line error names ``flag``."""
    try:
        box = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise NeuralFieldsError(f"{flag}: expected 6 numbers xmin,ymin,zmin,xmax,ymax,zmax, got {values!r}") from None
    if box.size != 6 or not np.isfinite(box).all():
        raise NeuralFieldsError(f"{flag}: expected 6 finite numbers xmin,ymin,zmin,xmax,ymax,zmax, got {values!r}")
    box = box.reshape(2, 3)
    if (box[1] <= box[0]).any():
        raise NeuralFieldsError(f"{flag}: each max must exceed its min, got {box.reshape(-1).tolist()}")
    return box


def narrow(box: Tensor, crop, flag: str = "--crop") -> Tensor:
    """``box [2, 3]`` intersected with ``crop`` (same dtype and device); an empty overlap is an error."""
    limits = torch.as_tensor(check_box(crop, flag), dtype=box.dtype, device=box.device)
    out = torch.stack([torch.maximum(box[0], limits[0]), torch.minimum(box[1], limits[1])])
    if (out[1] <= out[0]).any():
        raise NeuralFieldsError(f"{flag} {limits.reshape(-1).tolist()} does not overlap the region to export "
                                f"{[round(v, 4) for v in box.reshape(-1).tolist()]}")
    return out


def inside(points: np.ndarray, crop, flag: str = "--crop") -> np.ndarray:
    """``[N]`` bool: which of ``points [N, 3]`` lie in the crop box (boundary included)."""
    box = check_box(crop, flag)
    points = np.asarray(points)
    return ((points >= box[0]) & (points <= box[1])).all(-1)


def crop_mesh(mesh, crop, flag: str = "--crop"):
    """``mesh`` (trimesh) without the faces that have a vertex outside the crop box."""
    import trimesh

    keep_vertex = inside(mesh.vertices, crop, flag)
    if keep_vertex.all():
        return mesh
    faces = np.asarray(mesh.faces)
    kept = trimesh.Trimesh(mesh.vertices, faces[keep_vertex[faces].all(1)], process=False)
    kept.remove_unreferenced_vertices()
    return kept
