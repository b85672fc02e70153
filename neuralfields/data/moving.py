"""A tiny analytic dynamic scene in D-NeRF layout: a textured sphere gliding over a platform.

Used by tests and docs to check dynamic fields end to end without downloading anything. Like
D-NeRF, every frame has its own camera and its own ``time`` in [0, 1]; train times cover
``[0, 1]`` evenly, val/test times fall between them and their cameras differ from the
training ones.

The scene (world z-up, everything inside ``[-0.8, 0.8]^2 x [-0.6, 0.2]``, scene box ``[-1, 1]^3``):

* a platform box 1.6 x 1.6 x 0.1 with its top at ``z = -0.5``, grey checkerboard;
* a small static green cube at ``(0, 0.45, -0.37)``;
* a sphere of radius 0.28 floating at ``z = -0.15``, red/yellow latitude-longitude checker
  painted in its own frame, whose centre moves with time: ``translate`` (default) from
  ``x = -0.3`` to ``x = 0.3`` (about one diameter); ``static`` keeps it at ``x = 0`` (a static scene stored as dynamic).

Shading is Lambertian under one directional light plus ambient, without shadows: a moving
shadow would change the appearance of static surfaces, which a deformation field cannot
express and which would blur what the tests check. Geometry is traced in float64.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..atomic import write_json_atomic
from ..cameras import Cameras, fov_to_focal, look_at
from ..errors import NeuralFieldsError, file_error
from ..threads import torch_threads
from .demo import render_supersampled

SCENE_VERSION = 1
MOTIONS = {
    # time -> sphere centre offset along x (time in [0, 1])
    "translate": lambda t: -0.3 + 0.6 * t,
    "static": lambda t: 0.0,
}
SPLITS = ("train", "val", "test")
_MARKER = "moving_scene.json"
CAMERA_RADIUS = 3.2
TARGET = (0.0, 0.0, -0.3)
SCENE_RADIUS = 1.0  # bounding sphere of the geometry around TARGET; sets the field of view


class MovingScene:
    """Analytic platform + static cube + moving sphere; ``time`` selects the sphere position."""

    def __init__(self, motion: str = "translate"):
        if motion not in MOTIONS:
            raise NeuralFieldsError(f"moving scene: unknown motion '{motion}'; available: {', '.join(MOTIONS)}")
        self.motion = motion
        f64 = torch.float64
        self.box_centre = torch.tensor([[0.0, 0.0, -0.55], [0.0, 0.45, -0.37]], dtype=f64)
        self.box_half = torch.tensor([[0.8, 0.8, 0.05], [0.14, 0.14, 0.14]], dtype=f64)
        self.radius = 0.28
        light = torch.tensor([0.4, -0.5, 1.0], dtype=f64)
        self.light_dir = light / light.norm()
        self.ambient = 0.35

    def sphere_centre(self, time: float) -> Tensor:
        """Sphere centre ``[3]`` (float64) at ``time`` in [0, 1]."""
        return torch.tensor([MOTIONS[self.motion](float(time)), 0.0, -0.15], dtype=torch.float64)

    def intersect(self, origins: Tensor, dirs: Tensor, time: float) -> dict[str, Tensor]:
        """Trace rays ``[R, 3]`` at ``time``: ``hit [R]``, ``depth [R]`` (inf on a miss), ``rgb [R, 3]``."""
        o = origins.to(torch.float64)
        d = dirs.to(torch.float64)
        d = d / d.norm(dim=-1, keepdim=True)
        inf = torch.tensor(math.inf, dtype=o.dtype)

        # Boxes: slab test (zero direction components nudged so 0 * inf never appears).
        inv = 1.0 / torch.copysign(d.abs().clamp_min(1e-12), d)
        lo, hi = self.box_centre - self.box_half, self.box_centre + self.box_half  # [B, 3]
        ta = (lo[None] - o[:, None]) * inv[:, None]  # [R, B, 3]
        tb = (hi[None] - o[:, None]) * inv[:, None]
        t_near = torch.minimum(ta, tb).amax(-1)
        t_far = torch.maximum(ta, tb).amin(-1)
        t_box = torch.where((t_near <= t_far) & (t_near > 1e-6), t_near, inf)  # [R, B]

        # Sphere: closest-approach form (stable near silhouettes).
        centre = self.sphere_centre(time)
        oc = o - centre
        b = (oc * d).sum(-1)
        q = oc - b[:, None] * d
        h2 = self.radius**2 - (q * q).sum(-1)
        t_sph = -b - h2.clamp_min(0).sqrt()
        t_sph = torch.where((h2 >= 0) & (t_sph > 1e-6), t_sph, inf)

        depth, prim = torch.cat([t_box, t_sph[:, None]], dim=1).min(dim=1)
        hit = torch.isfinite(depth)
        p = o + torch.where(hit, depth, torch.zeros_like(depth))[:, None] * d
        normal, albedo = self._surface(p, prim, centre)
        shade = self.ambient + (1 - self.ambient) * (normal * self.light_dir).sum(-1).clamp_min(0)
        rgb = (albedo * shade[:, None]).clamp(0, 1) * hit[:, None]
        return {"hit": hit, "depth": depth, "rgb": rgb}

    def _surface(self, p: Tensor, prim: Tensor, centre: Tensor) -> tuple[Tensor, Tensor]:
        """Outward normals and albedo ``[R, 3]`` for primitive ids (0 platform, 1 cube, 2 sphere)."""
        n_boxes = self.box_centre.shape[0]
        bi = prim.clamp(max=n_boxes - 1)
        local = (p - self.box_centre[bi]) / self.box_half[bi]
        axis = local.abs().argmax(-1, keepdim=True)
        n_box = torch.zeros_like(p).scatter_(1, axis, local.gather(1, axis).sign())
        n_sph = (p - centre) / self.radius
        is_sphere = (prim == n_boxes)[:, None]
        normal = torch.where(is_sphere, n_sph, n_box)

        def pick(mask: Tensor, a: tuple, b: tuple) -> Tensor:
            return torch.where(mask[:, None], torch.tensor(a, dtype=p.dtype), torch.tensor(b, dtype=p.dtype))

        checker = (torch.floor(p[:, 0] / 0.2 + 0.5) + torch.floor(p[:, 1] / 0.2 + 0.5)).remainder(2) == 0
        platform = pick(checker, (0.85, 0.85, 0.8), (0.3, 0.33, 0.4))
        cube = torch.tensor((0.2, 0.7, 0.3), dtype=p.dtype).expand_as(p)
        s = p - centre  # sphere texture lives in the sphere's frame, so it moves with it
        lon = torch.atan2(s[:, 1], s[:, 0])
        lat = torch.asin((s[:, 2] / self.radius).clamp(-1, 1))
        cells = (torch.floor(lon / (math.pi / 3)) + torch.floor(lat / (math.pi / 6))).remainder(2) == 0
        sphere = pick(cells, (0.9, 0.15, 0.1), (1.0, 0.85, 0.2))
        albedo = torch.where(is_sphere, sphere, torch.where((prim == 0)[:, None], platform, cube))
        return normal, albedo

    def render(self, cameras: Cameras, index: int, time: float, supersample: int = 2) -> Tensor:
        """Anti-aliased RGBA image ``[H, W, 4]`` in [0, 1] (RGB not premultiplied; alpha = coverage)."""
        return render_supersampled(lambda o, d: self.intersect(o, d, time), cameras, index, supersample)


def moving_fov() -> float:
    """Field of view (radians) that frames the scene's bounding sphere from the camera radius."""
    return 2.0 * math.asin(SCENE_RADIUS / CAMERA_RADIUS)


def moving_camera_poses(n: int, split: str, seed: int = 0) -> Tensor:
    """Camera-to-world ``[n, 4, 4]``: random azimuths, elevations 20-60 degrees, one per frame."""
    rng = np.random.default_rng([int(seed), SPLITS.index(split), 7])
    azimuth = rng.uniform(0, 2 * math.pi, n)
    elevation = np.radians(rng.uniform(20.0, 60.0, n))
    dirs = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], -1)
    target = torch.tensor(TARGET)
    eye = target + CAMERA_RADIUS * torch.as_tensor(dirs, dtype=torch.float32)
    c2w = look_at(eye, target.expand_as(eye), torch.tensor([0.0, 0.0, 1.0]))
    return torch.cat([c2w, torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(n, 1, 4)], dim=1)


def split_times(n: int, split: str) -> list[float]:
    """Train times cover [0, 1] evenly; other splits sit half a step between them."""
    if split == "train":
        return [i / max(n - 1, 1) for i in range(n)]
    return [(i + 0.5) / n for i in range(n)]


def moving_cameras(frames: list[dict], fov: float, resolution: int) -> Cameras:
    c2w = torch.tensor([f["transform_matrix"] for f in frames], dtype=torch.float32).reshape(-1, 4, 4)
    focal = fov_to_focal(fov, resolution)
    return Cameras.create(c2w, focal, focal, resolution / 2, resolution / 2, resolution, resolution)


def write_moving_scene(out_dir: str | Path, resolution: int = 48, n_train: int = 50, n_val: int = 6,
                       n_test: int = 0, motion: str = "translate", seed: int = 0, supersample: int = 2) -> Path:
    """Render the scene into a D-NeRF folder (``transforms_{split}.json`` with ``time`` per frame).

    Re-uses a folder already holding the same parameters; refuses folders it did not write.
    """
    out_dir = Path(out_dir).expanduser()
    params = {"version": SCENE_VERSION, "resolution": int(resolution), "n_train": int(n_train), "n_val": int(n_val),
              "n_test": int(n_test), "motion": motion, "seed": int(seed), "supersample": int(supersample)}
    if params["resolution"] < 1 or params["n_train"] < 1 or params["supersample"] < 1 or n_val < 0 or n_test < 0:
        raise NeuralFieldsError(f"moving scene: resolution, n_train, supersample must be >= 1 and n_val, n_test >= 0, got {params}")
    scene = MovingScene(motion)
    marker = out_dir / _MARKER
    if marker.exists():
        try:
            if json.loads(marker.read_text()).get("params") == params:
                return out_dir
        except (OSError, ValueError):
            pass
    elif out_dir.exists() and any((out_dir / f"transforms_{s}.json").exists() for s in SPLITS):
        raise file_error(out_dir, "already holds a dataset not written by the moving-scene generator; choose another folder")

    out_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    with torch_threads(1):  # many small ops: a second thread mostly waits
        _write_splits(out_dir, scene, params)
    marker.write_text(json.dumps({"generator": "neuralfields.data.moving", "params": params}) + "\n")
    return out_dir


def _write_splits(out_dir: Path, scene: MovingScene, params: dict) -> None:
    fov, seed, supersample = moving_fov(), params["seed"], params["supersample"]
    for split in SPLITS:
        n = params[f"n_{split}"]
        if n == 0:
            continue  # no empty split files: loaders fall back from test to val
        (out_dir / split).mkdir(exist_ok=True)
        poses = moving_camera_poses(n, split, seed)
        frames = [{"file_path": f"./{split}/r_{i:03d}", "time": t, "transform_matrix": poses[i].tolist()}
                  for i, t in enumerate(split_times(n, split))]
        cameras = moving_cameras(frames, fov, params["resolution"])
        for i, frame in enumerate(frames):
            image = scene.render(cameras, i, frame["time"], supersample)
            pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
            Image.fromarray(pixels).save(out_dir / split / f"r_{i:03d}.png")
        meta = {"camera_angle_x": fov, "aabb": [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]], "frames": frames}
        write_json_atomic(out_dir / f"transforms_{split}.json", meta, indent=1, newline=True)
