"""Camera refinement: per-image SE(3) corrections learned with the field recover poses that are off."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error, ngp_copy, tiny_config
from neuralfields.camera_refinement import CameraCorrections, axis_angle_to_matrix, refine_cameras
from neuralfields.data import load_data, load_scene
from neuralfields.scene_model import SceneInfo, build_model, load_model
from neuralfields.scoring import score_model
from neuralfields.train.scene import scene_trainer

ROTATION_DEG = 2.0
TRANSLATION = 0.04  # 2% of the demo scene's size (its box is [-1, 1]^3)


def rotation_about(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = math.radians(degrees)
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k


def perturbed_copy(demo_dir: Path, out: Path, seed: int = 0) -> Path:
    """The demo scene with every training camera turned ``ROTATION_DEG`` about its centre (a
    random axis) and moved ``TRANSLATION`` (a random direction); val and test poses stay exact."""
    shutil.copytree(demo_dir, out)
    meta = json.loads((out / "transforms_train.json").read_text())
    rng = np.random.default_rng(seed)
    for frame in meta["frames"]:
        pose = np.asarray(frame["transform_matrix"], dtype=np.float64)
        shift = rng.normal(size=3)
        pose[:3, :3] = rotation_about(rng.normal(size=3), ROTATION_DEG) @ pose[:3, :3]
        pose[:3, 3] += TRANSLATION * shift / np.linalg.norm(shift)
        frame["transform_matrix"] = pose.tolist()
    (out / "transforms_train.json").write_text(json.dumps(meta))
    return out


def pose_errors(c2w: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    """Mean rotation error (degrees) and centre error (scene units) of ``c2w`` against ``truth`` ``[N, 3, 4]``."""
    relative = c2w[:, :, :3].double() @ truth[:, :, :3].double().transpose(1, 2)
    cos = ((relative.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)
    return (float(torch.rad2deg(torch.acos(cos)).mean()),
            float((c2w[:, :, 3] - truth[:, :, 3]).double().norm(dim=-1).mean()))


def test_axis_angle_matches_rodrigues_and_is_smooth_at_zero():
    v = torch.tensor([[0.0, 0.0, math.pi / 2], [0.3, -0.2, 0.5]], dtype=torch.float64)
    r = axis_angle_to_matrix(v)
    assert torch.allclose(r[0], torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64), atol=1e-12)
    expected = rotation_about(v[1].numpy(), math.degrees(float(v[1].norm())))
    assert np.allclose(r[1].numpy(), expected, atol=1e-12)
    zero = torch.zeros(1, 3, requires_grad=True)
    axis_angle_to_matrix(zero)[0, 1, 0].backward()
    assert torch.isfinite(zero.grad).all() and zero.grad[0, 2] == 1.0  # d R_yx / d v_z = 1 at the identity


def test_corrections_move_rays_of_training_images_only_and_fold_into_poses(demo_dir):
    scene = load_scene(demo_dir, "train")
    corrections = CameraCorrections(len(scene))
    with torch.no_grad():
        corrections.delta.normal_(0, 0.05)
    ids = torch.tensor([3, -1, 7])
    pixels = torch.tensor([5, 100, 2000])
    origins, dirs = [], []
    for i, p in zip(ids.tolist(), pixels):
        o, d = scene.cameras.pixel_rays(max(i, 0), p[None])
        origins.append(o)
        dirs.append(d)
    origins, dirs = torch.cat(origins), torch.cat(dirs)
    new_o, new_d = corrections.apply(ids, origins, dirs)
    assert torch.equal(new_o[1], origins[1]) and torch.equal(new_d[1], dirs[1])  # no training image
    assert not torch.allclose(new_o[0], origins[0])
    # The same rays from the refined poses: folding the corrections into the cameras is exact.
    refined = scene.cameras
    refined = type(refined)(corrections.c2w(refined.c2w).detach(), *(getattr(refined, f) for f in refined._fields()[1:]))
    for row, (i, p) in enumerate(zip([3, 7], pixels[[0, 2]])):
        o, d = refined.pixel_rays(i, p[None])
        k = 0 if row == 0 else 2
        assert torch.allclose(o[0], new_o[k].detach(), atol=1e-6) and torch.allclose(d[0], new_d[k].detach(), atol=1e-6)


def test_auto_refines_photographs_only(demo_dir, tmp_path):
    synthetic = SceneInfo.from_scene(load_scene(demo_dir, "train"))
    assert not synthetic.photographs
    assert not refine_cameras("auto", synthetic.photographs) and refine_cameras("on", False)
    assert refine_cameras("auto", True) and not refine_cameras("off", True)
    assert_one_line_error(lambda: refine_cameras("yes", True), "train.camera_refinement", "yes")
    # The same views as an instant-ngp folder of RGB photos.
    photos = ngp_copy(demo_dir, tmp_path / "photos")
    for f in photos.glob("*.png"):
        Image.open(f).convert("RGB").save(f)
    assert SceneInfo.from_scene(load_scene(photos, "all")).photographs


def test_corrections_are_saved_and_loaded_as_refined_training_poses(demo_dir, tmp_path):
    cfg = tiny_config(demo_dir, steps=1)
    cfg.train.camera_refinement = "on"
    train = load_data(cfg.data, "train")
    run_dir = tmp_path / "run"
    cfg.output = str(run_dir)
    loop = scene_trainer(cfg, train, None, run_dir, progress=False)
    model = loop.model
    delta = model.camera_corrections.delta
    camera_groups = [g for g in model.param_groups(0.01, 1e-6) if any(p is delta for p in g["params"])]
    assert [(g["lr"], g["weight_decay"]) for g in camera_groups] == [(cfg.train.camera_lr, cfg.train.camera_weight_decay)]
    assert any(p is delta for g in loop.optimizer.param_groups for p in g["params"])
    with torch.no_grad():
        delta.normal_(0, 0.02)
    loop.fit()
    expected = model.camera_corrections.c2w(train.cameras.c2w).detach()  # as trained (one step)
    loaded, state = load_model(run_dir)
    assert "camera_corrections" in state
    assert torch.allclose(loaded.info.cameras.c2w, expected, atol=1e-6)
    assert not loaded.camera_corrections.delta.any()  # folded: rays with image ids are not moved twice
    # eval says which poses it rendered: held-out views as given, training views as refined.
    from neuralfields.cli import main

    for split, poses in (("val", "as given (held-out views are not refined)"), ("train", "refined in training")):
        assert main(["eval", str(run_dir), "--split", split, "--max-images", "1", "--no-progress"]) == 0
        assert json.loads((run_dir / "eval" / split / "metrics.json").read_text())["poses"] == poses
    # Runs that do not refine have no corrections at all.
    cfg.train.camera_refinement = "auto"
    assert build_model(cfg, SceneInfo.from_scene(train)).camera_corrections is None


@pytest.mark.usefixtures("one_thread")
def test_refinement_recovers_most_of_the_psnr_lost_to_pose_errors(demo_dir, tiny_run, tmp_path):
    """Training poses off by 2 degrees and 2% of the scene: refinement gets back most of the val
    PSNR (exact val poses) that the errors cost, and brings the training poses closer to the truth."""
    perturbed = perturbed_copy(demo_dir, tmp_path / "perturbed")
    val = load_scene(demo_dir, "val")
    truth = load_scene(demo_dir, "train").cameras.c2w
    clean_model, _ = load_model(tiny_run)
    clean = score_model(clean_model, val)["psnr"]
    scores, errors = {}, {}
    for setting in ("off", "on"):
        cfg = tiny_config(perturbed, steps=300)
        cfg.train.camera_refinement = setting
        loop = scene_trainer(cfg, load_data(cfg.data, "train"), None, None, progress=False)
        loop.fit()
        model = loop.model
        model.fold_camera_corrections()
        scores[setting] = score_model(model, val)["psnr"]
        errors[setting] = pose_errors(model.info.cameras.c2w, truth)
    print(f"val PSNR: clean {clean:.2f}, perturbed {scores['off']:.2f}, refined {scores['on']:.2f} dB; "
          f"pose error (deg, units): perturbed {errors['off']}, refined {errors['on']}")
    lost = clean - scores["off"]
    assert lost > 1.0, (clean, scores)  # the perturbation matters, or the test shows nothing
    # Rotation is what the views pin down; a 2% shift of a camera 3.5 units away looks much like a
    # turn of a fraction of a degree, so the centres alone are not asserted.
    assert errors["on"][0] < 0.6 * errors["off"][0], errors
    assert scores["on"] - scores["off"] > 0.5 * lost, (clean, scores)
