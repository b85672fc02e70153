"""Forward-facing captures are told from the cameras (``normalize.camera_facing``), normalised as
NeRF normalises LLFF scenes, and given NDC (``render.space = auto``) with a line that says why."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from neuralfields.data import load_scene
from neuralfields.data.normalize import NEAR_PLANE_FRACTION, camera_facing, scene_kind
from test_loaders_normalize import forward_rig, inward_ring


def test_a_forward_rig_with_depths_is_forward_facing_and_nothing_else_is():
    rig = forward_rig()  # 20 cameras on a small plane, all looking along -z
    near = np.full(len(rig), 3.0)
    facing = camera_facing(rig, near)
    assert facing.forward and facing.max_angle < 1e-6 and "in front of all of them" in facing.describe()
    assert scene_kind(rig, near=near) == "forward"
    # Without depths nothing says the scene lies in front of the cameras.
    assert not camera_facing(rig).forward and scene_kind(rig) == "unbounded"
    # A camera that stands in front of the near plane, or looks 45 degrees away, breaks it.
    ahead = rig.copy()
    ahead[3, 2, 3] -= 2.0
    assert not camera_facing(ahead, near).forward
    turned = rig.copy()
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    turned[0, :3, :3] = turned[0, :3, :3] @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    facing = camera_facing(turned, near)
    assert not facing.forward and facing.max_angle > 30 and "at most 30" in facing.describe()
    # Cameras around an object look inward from every side: never forward-facing.
    ring = inward_ring()
    assert not camera_facing(ring, np.full(len(ring), 2.0)).forward
    assert scene_kind(ring, near=np.full(len(ring), 2.0)) == "object"


def test_the_synthetic_forward_capture_is_normalised_as_nerf_does(forward_dir):
    train, everything = load_scene(forward_dir, "train"), load_scene(forward_dir, "all")
    assert train.kind == everything.kind == "forward" and train.format == "llff"
    # NeRF's bd_factor: the nearest near bound becomes 1 / 0.75, so NDC's near plane lies at depth 1.
    assert everything.bounds[:, 0].min().item() == pytest.approx(1 / NEAR_PLANE_FRACTION, rel=1e-5)
    centres = everything.cameras.c2w[:, :, 3]
    assert centres.mean(0).abs().max() < 1e-5  # the mean camera centre is the origin
    assert everything.cameras.c2w[:, 2, 1].mean() > 0.99  # the mean up is +z
    # The scene box holds the cameras and what they see, up to the far bounds.
    assert (centres >= everything.aabb[0]).all() and (centres <= everything.aabb[1]).all()
    assert (everything.aabb[1] - everything.aabb[0]).max() > everything.bounds[:, 1].max() * 0.9


def test_train_data_says_ndc_and_why(forward_dir):
    from neuralfields.config import RunConfig, load_preset
    from neuralfields.train import auto

    scene = load_scene(forward_dir, "train")
    choices = auto.choose(scene, downscale_given=True, downscale=1.0)
    assert choices.preset == "forward"
    assert "forward-facing capture" in choices.notes[0] and "within 0 degrees" in choices.notes[0]
    assert "NDC space" in choices.notes[0] and "nearest depth 1.33" in choices.notes[0]
    assert "space 'ndc', sampler 'proposal'" in auto.describe(load_preset("forward"), scene)
    assert "space 'ndc'" in auto.describe(RunConfig(), scene)  # render.space = auto decides the same
    cfg = RunConfig()
    cfg.render.space = "contract"  # the user's choice wins
    assert "space 'contract'" in auto.describe(cfg, scene)


def load_quietly(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fox lists frames whose files are missing
        return load_scene(path, "all", **kw)


def test_fern_is_forward_facing_and_the_360_captures_are_not(shared_data):
    fern = load_quietly(shared_data / "llff" / "fern", downscale=16)
    assert fern.kind == "forward"
    facing = camera_facing(fern.cameras.c2w.double().numpy(), fern.near_depths)
    assert facing.forward and facing.max_angle < 15
    assert fern.bounds[:, 0].min().item() == pytest.approx(1 / NEAR_PLANE_FRACTION, rel=1e-5)
    for folder, kw in [("fox", dict(downscale=8)), ("captures/cup", dict(downscale=4)), ("captures/bird", dict(downscale=8)),
                       ("captures/cup", dict(downscale=4, format="llff")), ("captures/bird", dict(downscale=8, format="llff")),
                       ("nerf_synthetic/lego", dict(downscale=8))]:
        scene = load_quietly(shared_data / folder, **kw)
        assert scene.kind != "forward", folder
        facing = camera_facing(scene.cameras.c2w.double().numpy(), scene.near_depths)
        assert not facing.forward and facing.max_angle > 45, (folder, facing)


def test_the_demo_scene_is_not_forward_facing(demo_dir):
    scene = load_scene(demo_dir, "train")
    assert scene.kind == "object" and scene.near_depths is None
    assert not camera_facing(scene.cameras.c2w.double().numpy(), np.full(len(scene), 3.0)).forward
