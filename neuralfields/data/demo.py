"""The built-in demo scene: an analytic, exactly ray-traced tabletop written as a NeRF-synthetic folder.

``neuralfields train`` with no data argument renders this scene with :func:`write_demo_scene` and
trains on it, so the project can be tried (and tested end to end) without downloading anything.

The scene (world z-up, like Blender; all geometry inside ``[-0.8, 0.8] x [-0.8, 0.8] x [-0.6, 0.18]``,
so well inside the unit cube ``[-1, 1]^3``):

* a thin platform box 1.6 x 1.6 x 0.1 with its top at ``z = -0.5``, grey checkerboard;
* a tall green box with diagonal stripes and a small purple cube with a 3-D checker;
* a large red sphere with horizontal stripes, a medium blue sphere with a latitude/longitude
  checker, and a small orange-to-yellow gradient sphere resting on the purple cube.

Objects sink 0.02 into whatever they rest on, so no two faces coincide: renders have no
z-fighting and the union has a well-defined outer surface (used for Chamfer distances).

Shading is Lambertian under one directional light plus ambient, with hard shadows (a shadow ray
traced through the same intersector) and a mild Blinn-Phong highlight on the spheres, so the
images carry some view dependence. Everything else is empty: the background has alpha 0.

Geometry is traced in float64 internally because float32 ray-sphere tests lose several digits
near silhouettes; results are returned in the caller's dtype.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from neuralfields.atomic import write_json_atomic
from neuralfields.cameras import Cameras, fov_to_focal, look_at
from neuralfields.errors import NeuralFieldsError, file_error
from neuralfields.threads import torch_threads

# Bump when the geometry, shading or camera layout changes so cached demo folders are re-rendered.
SCENE_VERSION = 2
SCENE_BOX = [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]  # world-space box written to the transforms files

_T_MIN = 1e-6  # nearest accepted hit distance; rejects self-hits of rays leaving a surface
_SHADOW_OFFSET = 1e-5  # lift shadow-ray origins off the surface for the same reason
_CHUNK = 1 << 16  # rays per tracing batch: bounds peak memory at a few tens of MB

_MARKER = "demo_scene.json"
_PARTIAL = "demo_scene.partial"  # present while a generation is in progress
_SPLITS = ("train", "val", "test")

CAMERA_RADIUS = 3.5
ELEVATION_RANGE_DEG = (15.0, 60.0)


def _rgb(*c: float) -> Tensor:
    return torch.tensor(c, dtype=torch.float64)


class DemoScene:
    """Analytic scene of axis-aligned boxes and spheres with procedural textures.

    Primitives are indexed boxes first (platform = 0), then spheres. All public methods accept
    float32 or float64 tensors and return results in the input dtype.
    """

    def __init__(self) -> None:
        f64 = torch.float64
        # Platform, tall box, small cube.
        self.box_centre = torch.tensor([[0.0, 0.0, -0.55], [-0.35, 0.35, -0.17], [0.4, 0.3, -0.39]], dtype=f64)
        self.box_half = torch.tensor([[0.8, 0.8, 0.05], [0.18, 0.18, 0.35], [0.13, 0.13, 0.13]], dtype=f64)
        # Large red, medium blue, small gradient sphere (the last one rests on the small cube).
        self.sphere_centre = torch.tensor([[-0.3, -0.35, -0.2], [0.35, -0.3, -0.29], [0.4, 0.3, -0.16]], dtype=f64)
        self.sphere_radius = torch.tensor([0.32, 0.23, 0.12], dtype=f64)

        light = torch.tensor([0.5, -0.4, 1.0], dtype=f64)
        self.light_dir = light / light.norm()  # direction towards the light
        self.ambient = 0.3
        self.specular = 0.25
        self.shininess = 40.0

    # ------------------------------------------------------------------ geometry

    @property
    def n_boxes(self) -> int:
        return self.box_centre.shape[0]

    @property
    def n_primitives(self) -> int:
        return self.n_boxes + self.sphere_centre.shape[0]

    @property
    def bounds(self) -> tuple[Tensor, Tensor]:
        """Tight axis-aligned bounds of the geometry: ``(min [3], max [3])`` float32."""
        lo = torch.cat([self.box_centre - self.box_half, self.sphere_centre - self.sphere_radius[:, None]]).amin(0)
        hi = torch.cat([self.box_centre + self.box_half, self.sphere_centre + self.sphere_radius[:, None]]).amax(0)
        return lo.float(), hi.float()

    @property
    def centre(self) -> Tensor:
        """Centre of :attr:`bounds` ``[3]``; cameras look at this point."""
        lo, hi = self.bounds
        return 0.5 * (lo + hi)

    @property
    def bounding_radius(self) -> float:
        """Radius of the sphere around :attr:`centre` that contains the bounds box."""
        lo, hi = self.bounds
        return float(0.5 * (hi - lo).norm())

    def _trace(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        """Nearest hit of float64 rays with unit ``d``: ``t [R]`` (inf on a miss), primitive ``[R]``."""
        inf = torch.tensor(math.inf, dtype=o.dtype)

        # Per-axis [R, 1] columns against [1, P] rows: elementwise ops on contiguous [R, P] tensors
        # are several times faster than reductions over a trailing axis of size 3.
        ox, oy, oz = (o[:, i : i + 1] for i in range(3))
        dx, dy, dz = (d[:, i : i + 1] for i in range(3))

        # Spheres: solve via the closest-approach point, which keeps precision near grazing rays
        # where the textbook b^2 - c discriminant cancels catastrophically.
        cx, cy, cz = self.sphere_centre.T[:, None, :]
        ocx, ocy, ocz = ox - cx, oy - cy, oz - cz  # [R, S]
        b = ocx * dx + ocy * dy + ocz * dz
        qx, qy, qz = ocx - b * dx, ocy - b * dy, ocz - b * dz
        h2 = self.sphere_radius[None] ** 2 - (qx * qx + qy * qy + qz * qz)
        h = h2.clamp_min(0).sqrt()
        t_in, t_out = -b - h, -b + h
        t_sph = torch.where(t_in > _T_MIN, t_in, t_out)  # origin inside a sphere -> exit point
        t_sph = torch.where((h2 >= 0) & (t_sph > _T_MIN), t_sph, inf)

        # Boxes: slab test. Zero direction components become tiny ones so 0 * inf never yields NaN.
        inv = 1.0 / torch.copysign(d.abs().clamp_min(1e-12), d)
        lo = (self.box_centre - self.box_half).T[:, None, :]  # [3, 1, B]
        hi = (self.box_centre + self.box_half).T[:, None, :]
        t_near = t_far = None
        for axis, o_a in enumerate((ox, oy, oz)):
            inv_a = inv[:, axis : axis + 1]
            ta, tb = (lo[axis] - o_a) * inv_a, (hi[axis] - o_a) * inv_a  # [R, B]
            near, far = torch.minimum(ta, tb), torch.maximum(ta, tb)
            t_near = near if t_near is None else torch.maximum(t_near, near)
            t_far = far if t_far is None else torch.minimum(t_far, far)
        t_box = torch.where(t_near > _T_MIN, t_near, t_far)
        t_box = torch.where((t_near <= t_far) & (t_box > _T_MIN), t_box, inf)

        return torch.cat([t_box, t_sph], dim=1).min(dim=1)

    def _normals(self, p: Tensor, prim: Tensor) -> Tensor:
        """Outward unit normals ``[R, 3]`` at surface points ``p`` of primitives ``prim``."""
        nb = self.n_boxes
        is_box = prim < nb
        bi = prim.clamp(max=nb - 1)
        si = (prim - nb).clamp(min=0)

        # A box face is the axis along which the point is relatively furthest from the centre.
        local = (p - self.box_centre[bi]) / self.box_half[bi]
        axis = local.abs().argmax(-1)
        n_box = torch.zeros_like(p).scatter_(1, axis[:, None], local.gather(1, axis[:, None]).sign())

        n_sph = (p - self.sphere_centre[si]) / self.sphere_radius[si, None]
        n = torch.where(is_box[:, None], n_box, n_sph)
        return n / n.norm(dim=-1, keepdim=True)

    def _albedo(self, p: Tensor, prim: Tensor) -> Tensor:
        """Procedural surface colours ``[R, 3]`` in [0, 1]; solid textures in object-local space."""
        out = torch.zeros_like(p)
        nb = self.n_boxes

        def paint(mask: Tensor, pattern: Tensor, a: Tensor, b: Tensor) -> None:
            out[mask] = torch.where(pattern[:, None], a, b)

        # Platform: checker in x, y only. Cell edges sit at 0.1 + 0.2k, away from the faces, so
        # each face shows a clean pattern.
        m = prim == 0
        if m.any():
            q = p[m]
            cell = torch.floor(q[:, 0] / 0.2 + 0.5) + torch.floor(q[:, 1] / 0.2 + 0.5)
            paint(m, cell.remainder(2) == 0, _rgb(0.88, 0.88, 0.84), _rgb(0.32, 0.34, 0.4))

        # Tall box: diagonal stripes wrapping around all faces.
        m = prim == 1
        if m.any():
            q = p[m] - self.box_centre[1]
            stripe = torch.sin(2 * math.pi * q.sum(-1) / 0.15) > 0
            paint(m, stripe, _rgb(0.15, 0.65, 0.3), _rgb(0.85, 0.9, 0.35))

        # Small cube: 3-D checker with cells of 0.1 (faces at +-0.13 fall inside cells).
        m = prim == 2
        if m.any():
            q = p[m] - self.box_centre[2]
            cell = torch.floor(q / 0.1).sum(-1)
            paint(m, cell.remainder(2) == 0, _rgb(0.55, 0.2, 0.7), _rgb(0.95, 0.88, 0.95))

        # Red sphere: horizontal stripes.
        m = prim == nb + 0
        if m.any():
            q = p[m] - self.sphere_centre[0]
            stripe = torch.remainder(q[:, 2] / 0.08, 1.0) < 0.5
            paint(m, stripe, _rgb(0.85, 0.15, 0.1), _rgb(0.95, 0.85, 0.6))

        # Blue sphere: latitude/longitude checker (8 x 4 cells per hemisphere).
        m = prim == nb + 1
        if m.any():
            q = p[m] - self.sphere_centre[1]
            lon = torch.atan2(q[:, 1], q[:, 0])
            lat = torch.asin((q[:, 2] / self.sphere_radius[1]).clamp(-1, 1))
            cell = torch.floor(lon / (math.pi / 4)) + torch.floor(lat / (math.pi / 8))
            paint(m, cell.remainder(2) == 0, _rgb(0.15, 0.35, 0.85), _rgb(0.6, 0.85, 1.0))

        # Small sphere: vertical gradient, orange at the bottom to yellow at the top.
        m = prim == nb + 2
        if m.any():
            q = p[m] - self.sphere_centre[2]
            w = ((q[:, 2] / self.sphere_radius[2] + 1) * 0.5).clamp(0, 1)[:, None]
            out[m] = (1 - w) * _rgb(1.0, 0.45, 0.05) + w * _rgb(1.0, 0.95, 0.3)

        return out

    def intersect(self, origins: Tensor, dirs: Tensor) -> dict[str, Tensor]:
        """Trace rays against the scene and shade the nearest hit.

        Args:
            origins: ``[R, 3]`` ray origins.
            dirs: ``[R, 3]`` ray directions (need not be unit; ``t`` is measured in their units).
        Returns:
            dict with ``hit [R]`` bool, ``t [R]`` (inf on a miss), ``rgb [R, 3]`` shaded colour
            in [0, 1] (0 on a miss), ``normal [R, 3]`` outward unit normal (0 on a miss).
        """
        dtype = origins.dtype if origins.is_floating_point() else torch.float32
        o = origins.detach().to(torch.float64).cpu()
        d = dirs.detach().to(torch.float64).cpu()
        length = d.norm(dim=-1)
        d = d / length.clamp_min(1e-30)[:, None]

        t = torch.full((o.shape[0],), math.inf, dtype=torch.float64)
        rgb = torch.zeros_like(o)
        normal = torch.zeros_like(o)
        for s in range(0, o.shape[0], _CHUNK):
            sl = slice(s, s + _CHUNK)
            t[sl], rgb[sl], normal[sl] = self._shade_chunk(o[sl], d[sl])

        hit = torch.isfinite(t)
        device = origins.device
        return {
            "hit": hit.to(device),
            "t": (t / length).to(dtype).to(device),
            "rgb": rgb.to(dtype).to(device),
            "normal": normal.to(dtype).to(device),
        }

    def _shade_chunk(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        t, prim = self._trace(o, d)
        rgb = torch.zeros_like(o)
        normal = torch.zeros_like(o)
        hit = torch.isfinite(t)
        if not hit.any():
            return t, rgb, normal

        oh, dh, th, ph = o[hit], d[hit], t[hit], prim[hit]
        p = oh + th[:, None] * dh
        n = self._normals(p, ph)
        light = self.light_dir.expand_as(p)
        shadow_t, _ = self._trace(p + _SHADOW_OFFSET * n, light)
        lit = (~torch.isfinite(shadow_t)).to(p.dtype)

        n_dot_l = (n * light).sum(-1).clamp_min(0) * lit
        colour = self._albedo(p, ph) * (self.ambient + (1 - self.ambient) * n_dot_l)[:, None]
        # Highlights only on the spheres: boxes and platform stay matte, so the view-dependent
        # part of the scene is small and localised.
        half = light - dh
        half = half / half.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        spec = (n * half).sum(-1).clamp_min(0) ** self.shininess * lit * (ph >= self.n_boxes)
        colour = (colour + self.specular * spec[:, None]).clamp(0, 1)

        rgb[hit] = colour
        normal[hit] = n
        return t, rgb, normal

    # ------------------------------------------------------------------ distance field and sampling

    def _sdf64(self, p: Tensor) -> Tensor:
        q = (p[:, None, :] - self.box_centre[None]).abs() - self.box_half[None]  # [N, B, 3]
        d_box = q.clamp_min(0).norm(dim=-1) + q.amax(-1).clamp_max(0)
        d_sph = (p[:, None, :] - self.sphere_centre[None]).norm(dim=-1) - self.sphere_radius[None]
        return torch.cat([d_box, d_sph], dim=1).amin(dim=1)

    def sdf(self, points: Tensor) -> Tensor:
        """Signed distance ``[N]`` of the union at ``points`` ``[N, 3]`` (negative inside).

        Min over the primitives' exact SDFs (exact box SDF): exact outside and on the surface; inside
        the overlap of two primitives it underestimates the depth, as any union-by-min does.
        """
        dtype = points.dtype if points.is_floating_point() else torch.float32
        out = torch.cat([self._sdf64(c) for c in points.detach().to(torch.float64).cpu().split(_CHUNK)])
        return out.to(dtype).to(points.device)

    def _sample_primitives(self, prim: Tensor, gen: torch.Generator) -> Tensor:
        """One area-uniform surface point ``[M, 3]`` (float64) on each primitive in ``prim`` ``[M]``."""
        m = prim.shape[0]
        nb = self.n_boxes
        is_box = prim < nb
        bi = prim.clamp(max=nb - 1)
        si = (prim - nb).clamp(min=0)

        # Box: choose the face pair by its area, then a uniform point on one of its two faces.
        h = self.box_half[bi]  # [M, 3]
        face_area = torch.stack([h[:, 1] * h[:, 2], h[:, 0] * h[:, 2], h[:, 0] * h[:, 1]], dim=-1)
        axis = torch.multinomial(face_area, 1, generator=gen)  # [M, 1]
        u = torch.rand(m, 3, dtype=torch.float64, generator=gen) * 2 - 1
        side = torch.where(torch.rand(m, 1, dtype=torch.float64, generator=gen) < 0.5, -1.0, 1.0)
        u = u.scatter(1, axis, side.to(u.dtype))
        p_box = self.box_centre[bi] + u * h

        g = torch.randn(m, 3, dtype=torch.float64, generator=gen)
        g = g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        p_sph = self.sphere_centre[si] + g * self.sphere_radius[si, None]
        return torch.where(is_box[:, None], p_box, p_sph)

    def sample_surface(self, n: int, seed: int = 0) -> Tensor:
        """``[n, 3]`` float32 points, area-uniform on the outer surface of the union.

        Every primitive's surface is sampled in proportion to its area; points buried inside
        another primitive (union sdf < 0) are rejected and sampling repeats until ``n`` remain.
        The platform's underside is included: it is part of the true surface even though the
        demo cameras never see it.
        """
        gen = torch.Generator().manual_seed(int(seed))
        h = self.box_half
        areas = torch.cat([8 * (h[:, 0] * h[:, 1] + h[:, 1] * h[:, 2] + h[:, 0] * h[:, 2]),
                           4 * math.pi * self.sphere_radius ** 2])
        kept: list[Tensor] = []
        count = 0
        while count < n:
            batch = max(2 * (n - count), 1024)
            prim = torch.multinomial(areas, batch, replacement=True, generator=gen)
            pts = self._sample_primitives(prim, gen)
            # A sampled point is exactly on its own primitive (sdf ~ 1e-16), so the union sdf is
            # negative only when another primitive covers it.
            pts = pts[self._sdf64(pts) > -1e-9]
            kept.append(pts)
            count += pts.shape[0]
        return torch.cat(kept)[:n].float()

    # ------------------------------------------------------------------ rendering

    def render(self, cameras: Cameras, index: int, supersample: int = 2) -> Tensor:
        """Anti-aliased RGBA image ``[H, W, 4]`` float32 in [0, 1] for camera ``index``.

        ``supersample x supersample`` rays per pixel on a regular sub-grid. Alpha is the covered
        fraction; RGB is the mean colour of the covered sub-rays (not premultiplied), 0 where empty.
        """
        return render_supersampled(self.intersect, cameras, index, supersample)


def render_supersampled(intersect: Callable[[Tensor, Tensor], dict], cameras: Cameras, index: int,
                        supersample: int = 2) -> Tensor:
    """Anti-aliased RGBA image ``[H, W, 4]`` of an analytic scene seen by camera ``index``.

    ``intersect(origins [R, 3], dirs [R, 3])`` returns ``hit [R]`` and ``rgb [R, 3]`` per ray;
    ``supersample x supersample`` rays per pixel sit on a regular sub-grid. Alpha is the covered
    fraction; RGB is the mean colour of the covered sub-rays (not premultiplied), 0 where empty.
    """
    s = int(supersample)
    w, h = int(cameras.width[index]), int(cameras.height[index])
    sub = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    v = torch.arange(h, dtype=torch.float32)[:, None, None, None] + sub[None, None, :, None]
    u = torch.arange(w, dtype=torch.float32)[None, :, None, None] + sub[None, None, None, :]
    v, u = torch.broadcast_tensors(v, u)  # [H, W, S, S]
    idx = torch.full((h * w * s * s,), index, dtype=torch.long)
    with torch_threads(1):
        origins, dirs = cameras.rays(idx, u.reshape(-1), v.reshape(-1))
        out = intersect(origins, dirs)
    hit = out["hit"].reshape(h, w, s * s).float()
    rgb = out["rgb"].float().reshape(h, w, s * s, 3)
    covered = hit.sum(-1)
    colour = (rgb * hit[..., None]).sum(2) / covered.clamp_min(1)[..., None]
    return torch.cat([colour, (covered / (s * s))[..., None]], dim=-1)


# ---------------------------------------------------------------------- cameras


def demo_fov(scene: DemoScene | None = None, radius: float = CAMERA_RADIUS) -> float:
    """Horizontal (= vertical) field of view in radians that frames the whole scene from ``radius``.

    The bounding sphere of the scene subtends ``2 asin(R / radius)``; it projects inside the
    circle inscribed in the square image, which leaves the corners as margin.
    """
    scene = scene or DemoScene()
    return 2.0 * math.asin(scene.bounding_radius / radius)


def demo_camera_poses(n: int, split: str, seed: int = 0, scene: DemoScene | None = None) -> Tensor:
    """Camera-to-world matrices ``[n, 4, 4]`` on the upper hemisphere around the scene centre.

    A Fibonacci spiral over the elevation band (uniform in ``sin(elevation)``, i.e. by area) gives
    evenly spread views; each split gets its own random azimuth phase and height offset, so
    val/test cameras do not coincide with training ones.
    """
    scene = scene or DemoScene()
    split_id = _SPLITS.index(split)
    rng = np.random.default_rng([int(seed), split_id])
    phase = rng.uniform(0, 2 * math.pi)
    offset = 0.5 if split == "train" else rng.uniform(0.15, 0.85)

    lo, hi = (math.sin(math.radians(e)) for e in ELEVATION_RANGE_DEG)
    k = np.arange(n, dtype=np.float64)
    z = lo + (k + offset) / max(n, 1) * (hi - lo)
    golden = math.pi * (3.0 - math.sqrt(5.0))
    azimuth = phase + k * golden
    ring = np.sqrt(1.0 - z * z)
    dirs = np.stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z], axis=-1)

    target = scene.centre
    eye = target + CAMERA_RADIUS * torch.as_tensor(dirs, dtype=torch.float32)
    c2w = look_at(eye, target.expand_as(eye), torch.tensor([0.0, 0.0, 1.0]))
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(n, 1, 4)
    return torch.cat([c2w, bottom], dim=1)


def demo_cameras(transforms: dict, resolution: int) -> Cameras:
    """:class:`Cameras` for a loaded ``transforms_*.json`` dict of a square ``resolution`` image."""
    c2w = torch.tensor([f["transform_matrix"] for f in transforms["frames"]], dtype=torch.float32).reshape(-1, 4, 4)
    focal = fov_to_focal(transforms["camera_angle_x"], resolution)
    return Cameras.create(c2w, focal, focal, resolution / 2, resolution / 2, resolution, resolution)


# ---------------------------------------------------------------------- folder writing


def default_demo_dir() -> Path:
    """Where the CLI keeps the default demo scene: ``$NEURALFIELDS_HOME/demo`` or ``~/.cache/neuralfields/demo``."""
    home = os.environ.get("NEURALFIELDS_HOME")
    if home:
        return Path(home).expanduser() / "demo"
    return Path.home() / ".cache" / "neuralfields" / "demo"


def _expected_files(params: dict) -> list[str]:
    files = [f"transforms_{s}.json" for s in _SPLITS]
    for split in _SPLITS:
        files += [f"{split}/r_{i}.png" for i in range(params[f"n_{split}"])]
    return files


def _is_complete(out_dir: Path, params: dict) -> bool:
    try:
        marker = json.loads((out_dir / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("params") != params:
        return False
    return all((out_dir / f).is_file() for f in _expected_files(params))


def write_demo_scene(
    out_dir: str | Path,
    resolution: int = 128,
    n_train: int = 60,
    n_val: int = 8,
    n_test: int = 8,
    seed: int = 0,
    supersample: int = 2,
) -> Path:
    """Render the demo scene into a NeRF-synthetic ("Blender") folder and return its path.

    Writes ``{train,val,test}/r_{i}.png`` (8-bit RGBA, not premultiplied), ``transforms_{split}.json``
    and, last, a ``demo_scene.json`` marker with the parameters. If the folder already holds a
    complete scene with the same parameters, nothing is rendered.

    Raises:
        NeuralFieldsError: on invalid parameters, or if ``out_dir`` already holds a dataset that
            this function did not write (it is never overwritten).
    """
    out_dir = Path(out_dir).expanduser()
    params = {
        "version": SCENE_VERSION, "resolution": int(resolution), "n_train": int(n_train),
        "n_val": int(n_val), "n_test": int(n_test), "seed": int(seed), "supersample": int(supersample),
    }
    if params["resolution"] < 1 or params["supersample"] < 1 or params["n_train"] < 1:
        raise NeuralFieldsError(f"demo scene: resolution, supersample and n_train must be >= 1, got {params}")
    if params["n_val"] < 0 or params["n_test"] < 0:
        raise NeuralFieldsError(f"demo scene: n_val and n_test must be >= 0, got {params}")

    if _is_complete(out_dir, params):
        return out_dir

    ours = (out_dir / _MARKER).exists() or (out_dir / _PARTIAL).exists()
    foreign = [n for n in (*(f"transforms_{s}.json" for s in _SPLITS), *_SPLITS) if (out_dir / n).exists()]
    if foreign and not ours:
        raise file_error(out_dir, f"already holds {', '.join(foreign)} not written by the demo generator; "
                         "refusing to overwrite it (choose another folder)")

    out_dir.mkdir(parents=True, exist_ok=True)
    # Claim the folder before touching anything: a run interrupted from here on leaves no marker,
    # so the next call re-renders, and the partial stamp shows the leftovers are ours.
    (out_dir / _PARTIAL).write_text(json.dumps(params) + "\n")
    (out_dir / _MARKER).unlink(missing_ok=True)

    scene = DemoScene()
    fov = demo_fov(scene)
    with torch_threads(1):
        for split in _SPLITS:
            split_dir = out_dir / split
            split_dir.mkdir(exist_ok=True)
            n = params[f"n_{split}"]
            # Frames left over from an earlier, larger demo scene would confuse folder-globbing tools.
            for stale in split_dir.glob("r_*.png"):
                if stale.stem[2:].isdigit() and int(stale.stem[2:]) >= n:
                    stale.unlink()

            poses = demo_camera_poses(n, split, params["seed"], scene)
            frames = [{"file_path": f"./{split}/r_{i}", "transform_matrix": poses[i].tolist()} for i in range(n)]
            # A tight scene box ("aabb", an extension the loader reads) spends the grids on the objects.
            transforms = {"camera_angle_x": fov, "aabb": SCENE_BOX, "frames": frames}
            if n:
                cameras = demo_cameras(transforms, params["resolution"])
                for i in range(n):
                    image = scene.render(cameras, i, params["supersample"])
                    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
                    Image.fromarray(pixels).save(split_dir / f"r_{i}.png")
            write_json_atomic(out_dir / f"transforms_{split}.json", transforms)

    write_json_atomic(out_dir / _MARKER, {"generator": "neuralfields.data.demo", "params": params,
                                          "camera_angle_x": fov})
    (out_dir / _PARTIAL).unlink(missing_ok=True)
    return out_dir

