"""Write the stored renders that tests/test_scene_model.py compares against.

Each case builds a scene model from a config and a seed (every parameter drawn from one seeded
generator, so the weights depend on nothing but the architecture), renders two views of a
fixed camera rig and stores the buffers. Run it with the code whose output is the reference
(before a refactor that must not change renders); the test rebuilds the same models with the
current code and compares:

    python scripts/make_reference_renders.py tests/assets/reference_renders_unbounded.pt
"""

from __future__ import annotations

import math
import sys

import torch

from neuralfields.cameras import Cameras, look_at
from neuralfields.config import RunConfig

try:
    from neuralfields.scene_model import SceneInfo, build_model
except ImportError:  # the code before the scene model had its own module
    from neuralfields.model import SceneInfo, build_model

# name -> (render settings, field options): unbounded space with each sampler, appearance codes on.
CASES = {
    "proposal": ({"sampler": "proposal", "space": "contract", "proposal_samples": [32, 16], "samples_per_ray": 12,
                  "proposal_max_res": [32, 64]}, {"appearance_dim": 4}),
    "occupancy": ({"sampler": "occupancy", "space": "contract", "grid_resolution": 16, "samples_per_diagonal": 64},
                  {"appearance_dim": 4}),
}
FIELD = {"n_levels": 4, "n_features": 2, "log2_table": 10, "max_res": 64, "hidden": 16}


def rig(n: int = 2, size: int = 24) -> Cameras:
    """``n`` cameras on a circle of radius 1.5 inside the unit box's contraction, looking at the centre."""
    poses = []
    for k in range(n):
        angle = 2 * math.pi * k / n
        eye = torch.tensor([1.5 * math.cos(angle), 1.5 * math.sin(angle), 0.4])
        poses.append(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])))
    c2w = torch.stack(poses)
    return Cameras.create(c2w, size, size, size / 2, size / 2, size, size)


def build(case: str, seed: int = 0):
    render, options = CASES[case]
    cfg = RunConfig(scene="reference")
    cfg.field.options = {**FIELD, **options}
    for key, value in render.items():
        setattr(cfg.render, key, value)
    cameras = rig()
    info = SceneInfo(torch.tensor([[-1.0] * 3, [1.0] * 3]), 1.0, False, cameras, None, "unbounded")
    model = build_model(cfg, info)
    g = torch.Generator().manual_seed(seed)
    modules = [model.field, model.sampler] + ([model.appearance] if model.appearance is not None else [])
    with torch.no_grad():
        for module in modules:
            for _, p in sorted(module.named_parameters()):
                p.copy_(torch.randn(p.shape, generator=g) * 0.25)
    return model, cameras


def render_case(case: str) -> list[dict[str, torch.Tensor]]:
    model, cameras = build(case)
    return [model.render_camera(cameras, i, outputs=("rgb", "depth", "opacity")) for i in range(len(cameras))]


def main(out: str) -> int:
    torch.set_num_threads(1)
    torch.save({case: render_case(case) for case in CASES}, out)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
