"""Splat files: the INRIA 3DGS ``.ply`` (what every splat viewer reads) and antimatter15's ``.splat``.

``.ply`` (binary little-endian, one ``vertex`` element of float32 properties, in this order):
``x y z``, ``nx ny nz`` (zeros), ``f_dc_0..2``, ``f_rest_0..`` (``3 (K - 1)`` of them, channel-major:
``f_rest_{c (K - 1) + k}`` is band coefficient ``k + 1`` of channel ``c``, as the reference
implementation flattens them), ``opacity`` (the logit), ``scale_0..2`` (logs), ``rot_0..3``
(w, x, y, z, not necessarily unit). The parameters are stored as :class:`~.scene.GaussianScene`
holds them, so the file reads back exactly.

``.splat`` (32 bytes per splat, little-endian, no header): position ``3 x float32``, scale
``3 x float32`` (standard deviations), RGBA ``4 x uint8`` (``0.5 + Y_0 f_dc``, alpha the opacity),
rotation ``4 x uint8`` (the unit quaternion mapped as ``q * 128 + 128``); sorted by decreasing
``volume x opacity`` as antimatter15's converter writes it, so a viewer that streams the file draws
the largest splats first. Values are rounded to the nearest byte (the converter truncates).
View-dependent colour is lost: the format has none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..atomic import atomic_path
from ..data.ply import read_ply_vertices
from ..errors import NeuralFieldsError, file_error
from ..registry import Registry
from .scene import GaussianScene
from .sh import SH_C0, sh_bases
from .transform import transform_scene

SPLAT_DTYPE = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rotation", "u1", 4)])
REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3")


def ply_properties(degree: int) -> list[str]:
    """The vertex properties of a splat ``.ply`` with colour up to SH ``degree``, in file order."""
    rest = [f"f_rest_{i}" for i in range(3 * (sh_bases(degree) - 1))]
    return ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", *rest, "opacity",
            "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def _moved(scene: GaussianScene, transform) -> GaussianScene:
    return scene if transform is None else transform_scene(scene, transform)


def save_ply(scene: GaussianScene, path: str | Path, transform=None) -> Path:
    """Write ``scene`` (moved by the similarity ``transform [4, 4]`` first, if given) as a 3DGS ``.ply``."""
    scene = _moved(scene, transform)
    names = ply_properties(scene.max_degree)
    n = len(scene)
    with torch.no_grad():
        columns = torch.cat([scene.means, torch.zeros(n, 3, device=scene.means.device), scene.sh_dc[:, 0],
                             scene.sh_rest.transpose(1, 2).reshape(n, -1), scene.opacity_logits[:, None],
                             scene.log_scales, scene.quats], 1).cpu().numpy().astype("<f4")
    header = "\n".join(["ply", "format binary_little_endian 1.0", f"element vertex {n}",
                        *(f"property float {name}" for name in names), "end_header"]) + "\n"
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(header.encode("ascii"))
            f.write(np.ascontiguousarray(columns).tobytes())
    return path


def read_ply(path: str | Path) -> GaussianScene:
    """A :class:`GaussianScene` from a 3DGS ``.ply``; any other file is a one-line error naming it."""
    path = Path(path)
    vertices = read_ply_vertices(path)
    names = set(vertices.dtype.names)
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise file_error(path, f"not a Gaussian splat file: its vertices have no {', '.join(missing[:4])}"
                               f"{' ...' if len(missing) > 4 else ''}")
    n_rest = sum(name.startswith("f_rest_") for name in names)
    degree = next((d for d in range(4) if 3 * (sh_bases(d) - 1) == n_rest), None)
    if degree is None or any(f"f_rest_{i}" not in names for i in range(n_rest)):
        raise file_error(path, f"not a Gaussian splat file: {n_rest} f_rest properties is not 3 ((degree + 1)^2 - 1)")

    n = len(vertices)

    def stack(*fields) -> torch.Tensor:
        """``[n, len(fields)]`` float32 columns of the vertices."""
        out = np.empty((n, len(fields)), np.float32)
        for i, field in enumerate(fields):
            out[:, i] = vertices[field]
        return torch.from_numpy(out)

    rest = stack(*(f"f_rest_{i}" for i in range(n_rest))).reshape(n, 3, -1).transpose(1, 2)
    sh = torch.cat([stack("f_dc_0", "f_dc_1", "f_dc_2")[:, None], rest], 1)
    if not all(torch.isfinite(t).all() for t in (sh, stack(*REQUIRED))):
        raise file_error(path, "the splat file holds values that are not finite")
    return GaussianScene(stack("x", "y", "z"), stack("scale_0", "scale_1", "scale_2"),
                         stack("rot_0", "rot_1", "rot_2", "rot_3"), stack("opacity")[:, 0], sh)


def splat_records(scene: GaussianScene) -> np.ndarray:
    """``scene`` as ``.splat`` records (:data:`SPLAT_DTYPE`), largest ``volume x opacity`` first."""
    with torch.no_grad():
        log_scales = scene.log_scales.cpu().double()
        opacity = scene.opacities.cpu().double()
        order = torch.argsort(-(log_scales.sum(1).exp() * opacity), stable=True)
        rgb = scene.sh_dc[:, 0].cpu().double() * SH_C0 + 0.5
        quats = scene.quats.cpu().double()
        quats = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        records = np.zeros(len(scene), dtype=SPLAT_DTYPE)
        records["position"] = scene.means.cpu()[order].numpy()
        records["scale"] = log_scales.exp()[order].numpy()
        rgba = torch.cat([rgb, opacity[:, None]], 1)[order]
        records["rgba"] = (rgba * 255).round().clamp(0, 255).numpy()
        records["rotation"] = (quats[order] * 128 + 128).round().clamp(0, 255).numpy()
    return records


def save_splat(scene: GaussianScene, path: str | Path, transform=None) -> Path:
    """Write ``scene`` (moved by ``transform [4, 4]`` first, if given) as antimatter15's ``.splat``."""
    records = splat_records(_moved(scene, transform))
    path = Path(path)
    with atomic_path(path) as tmp:
        records.tofile(tmp)
    return path


def read_splat(path: str | Path) -> np.ndarray:
    """The records of a ``.splat`` file (fields ``position``, ``scale``, ``rgba``, ``rotation``)."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0 or size % SPLAT_DTYPE.itemsize:
        raise file_error(path, f"not a .splat file: {size} bytes is not a multiple of {SPLAT_DTYPE.itemsize}")
    return np.fromfile(path, dtype=SPLAT_DTYPE)


SPLAT_FORMATS: Registry[Callable[..., Path]] = Registry("splat file format")
SPLAT_FORMATS.register(".ply", save_ply)
SPLAT_FORMATS.register(".splat", save_splat)


def save_splats(scene: GaussianScene, path: str | Path, transform=None) -> Path:
    """Write ``scene`` in the format its suffix names (:data:`SPLAT_FORMATS`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SPLAT_FORMATS:
        raise NeuralFieldsError(f"--out {path}: splats are written as {' or '.join(SPLAT_FORMATS)}")
    return SPLAT_FORMATS[suffix](scene, path, transform)
