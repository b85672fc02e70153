"""Pose alignment of held-out views (``eval --align-poses``): fit on the left half, score the right."""

import dataclasses
import json
import math

import pytest
import torch

from conftest import assert_one_line_error, tiny_config
from neuralfields.camera_refinement import axis_angle_to_matrix
from neuralfields.data import load_data, load_scene
from neuralfields.data.scene import Scene, composite_background
from neuralfields.errors import NeuralFieldsError
from neuralfields.pose_alignment import PoseAlignmentConfig, align_view, aligned_cameras, fitting_half
from neuralfields.run.metrics import psnr
from neuralfields.scene_model import load_model
from neuralfields.scoring import score_model
from neuralfields.train.scene import scene_trainer

pytestmark = pytest.mark.usefixtures("one_thread")

ROTATION_DEG = 2.0
TRANSLATION = 0.04  # 2% of the demo scene's size (its box is [-1, 1]^3)


def perturbed(scene: Scene, indices: list[int], seed: int = 0) -> Scene:
    """``scene`` with cameras ``indices`` turned ``ROTATION_DEG`` about their centre (a random axis)
    and moved ``TRANSLATION`` (a random direction); the images stay as they are."""
    g = torch.Generator().manual_seed(seed)
    c2w = scene.cameras.c2w.clone()
    for i in indices:
        axis, shift = torch.randn(3, generator=g), torch.randn(3, generator=g)
        turn = axis_angle_to_matrix((axis / axis.norm() * math.radians(ROTATION_DEG))[None])[0]
        c2w[i, :, :3] = turn @ c2w[i, :, :3]
        c2w[i, :, 3] += TRANSLATION * shift / shift.norm()
    return dataclasses.replace(scene, cameras=dataclasses.replace(scene.cameras, c2w=c2w))


def with_noise(scene: Scene, index: int, columns: slice, seed: int = 0) -> Scene:
    """``scene`` with the pixel ``columns`` of image ``index`` replaced by noise."""
    images = scene.images.clone()
    g = torch.Generator().manual_seed(seed)
    patch = images[index, :, columns]
    images[index, :, columns] = torch.randint(0, 256, patch.shape, generator=g, dtype=torch.uint8)
    return dataclasses.replace(scene, images=images)


def rotation_error_degrees(c2w: torch.Tensor, truth: torch.Tensor) -> float:
    relative = c2w[:3, :3].double() @ truth[:3, :3].double().T
    return math.degrees(math.acos(max(-1.0, min(1.0, (float(relative.trace()) - 1) / 2))))


def test_alignment_recovers_most_of_the_psnr_lost_to_a_held_out_pose_error(demo_dir, tiny_run):
    """Held-out poses off by 2 degrees and 2% of the scene: aligning each on its left half gets
    back most of the right-half PSNR that the error cost against the exact poses."""
    model, _ = load_model(tiny_run)
    val = load_scene(demo_dir, "val")
    views = [0, 1]
    off = perturbed(val, views)
    exact = score_model(model, val, views, align=PoseAlignmentConfig(steps=0))  # right halves, exact poses
    aligned = score_model(model, off, views, align=PoseAlignmentConfig())
    clean, given, after = exact["psnr"], aligned["psnr_given_pose"], aligned["psnr"]
    errors = []
    for i, row in zip(views, aligned["images"]):
        fit = align_view(model, off, i, PoseAlignmentConfig())  # the same seeded fit as the row's
        assert math.isclose(fit.rotation_degrees, row["rotation_deg"], rel_tol=1e-6)
        moved = aligned_cameras(off.cameras, i, fit).c2w[i]
        errors.append((rotation_error_degrees(off.cameras.c2w[i], val.cameras.c2w[i]),
                       rotation_error_degrees(moved, val.cameras.c2w[i])))
    print(f"right-half PSNR: exact poses {clean:.2f}, perturbed {given:.2f}, aligned {after:.2f} dB; "
          f"rotation error (deg) before/after {errors}; per view {aligned['images']}")
    lost = clean - given
    assert lost > 1.0, (clean, given)  # the perturbation matters, or the test shows nothing
    assert after - given > 0.6 * lost, (clean, given, after)
    assert all(e_after < e_before for e_before, e_after in errors), errors


def test_the_fit_reads_only_the_left_half_and_the_score_only_the_right_half(demo_dir, tiny_run):
    model, _ = load_model(tiny_run)
    val = perturbed(load_scene(demo_dir, "val"), [0])
    w = val.width
    right = fitting_half(w)
    assert right == w // 2
    cfg = PoseAlignmentConfig(steps=15, rays=256)
    # The fit never sees the right half: noise there leaves the fitted pose bit for bit the same,
    # and noise on the left half moves it.
    fit = align_view(model, val, 0, cfg)
    assert fit.delta.abs().max() > 0
    assert torch.equal(align_view(model, with_noise(val, 0, slice(right, None)), 0, cfg).delta, fit.delta)
    assert not torch.equal(align_view(model, with_noise(val, 0, slice(0, right)), 0, cfg).delta, fit.delta)
    # The score never sees the left half (no fit here, so that only the scoring differs).
    none = PoseAlignmentConfig(steps=0)
    base = score_model(model, val, [0], align=none)
    left = score_model(model, with_noise(val, 0, slice(0, right)), [0], align=none)
    assert (left["psnr"], left["ssim"]) == (base["psnr"], base["ssim"])
    assert score_model(model, with_noise(val, 0, slice(right, None)), [0], align=none)["psnr"] < base["psnr"] - 3
    render = model.render_camera(val.cameras, 0)["rgb"]
    target = composite_background(val.image(0), model.background)
    assert base["psnr"] == pytest.approx(psnr(render[:, right:], target[:, right:]), abs=1e-9)
    assert base["psnr"] != pytest.approx(psnr(render, target), abs=1e-3)


def test_alignment_fits_pose_and_code_of_a_contracted_proposal_run_and_leaves_the_model_alone(demo_dir, tmp_path):
    cfg = tiny_config(demo_dir, steps=40, options=dict(n_levels=8, n_features=2, log2_table=14, max_res=128,
                                                         appearance_dim=4))
    cfg.render.space, cfg.render.sampler = "contract", "proposal"
    cfg.render.proposal_samples, cfg.render.samples_per_ray = [32, 16], 12
    run = tmp_path / "run"
    cfg.output = str(run)
    scene_trainer(cfg, load_data(cfg.data, "train"), None, run, progress=False).fit()
    model, _ = load_model(run)
    assert type(model.sampler).__name__ == "ProposalSampler" and model.appearance is not None
    before = {k: v.clone() for k, v in model.state_dict()["field"].items()}
    trainable = [p.requires_grad for p in model.parameters()]
    val = perturbed(load_scene(demo_dir, "val"), [0])
    fit = align_view(model, val, 0, PoseAlignmentConfig(steps=10, rays=256))
    assert fit.delta is not None and torch.isfinite(fit.delta).all() and fit.delta.abs().max() > 0
    assert fit.code is not None and not torch.allclose(fit.code, model.appearance.default_code())
    assert model.appearance.fixed is None  # the fitted code is not left behind for other renders
    assert [p.requires_grad for p in model.parameters()] == trainable
    assert all(torch.equal(before[k], v) for k, v in model.state_dict()["field"].items())
    # With codes, the given pose is scored with a code fitted alone on the left half (NeRF-W).
    row = score_model(model, val, [0], align=PoseAlignmentConfig(steps=5, rays=256))["images"][0]
    assert row["psnr_given_pose"] == row["psnr_right_fitted"] and "psnr_right_mean" in row


def test_eval_align_poses_writes_its_protocol_beside_the_default_eval(tiny_run, capsys):
    from neuralfields.cli import main

    base = ["eval", str(tiny_run), "--max-images", "1", "--no-progress"]
    assert main(base + ["--align-poses", "--align-steps", "20", "--align-rays", "256"]) == 0
    printed = capsys.readouterr().out
    assert "aligning poses: 1 view, each 20 Adam steps of 256 rays" in printed
    metrics = json.loads((tiny_run / "eval" / "val-aligned" / "metrics.json").read_text())
    assert metrics["poses"] == "aligned on the left half, scored on the right half"
    assert metrics["aligned_from"] == "as given"
    assert metrics["alignment"]["steps"] == 20 and metrics["alignment"]["rays"] == 256
    row = metrics["images"][0]
    assert {"psnr", "ssim", "psnr_given_pose", "rotation_deg", "translation"} <= set(row)
    assert metrics["psnr_given_pose"] == row["psnr_given_pose"] and metrics["psnr"] == row["psnr"]
    assert (tiny_run / "eval" / "val-aligned" / "0000_rgb.png").is_file()
    # The default eval is unchanged: whole images from the given poses.
    assert main(base) == 0
    plain = json.loads((tiny_run / "eval" / "val" / "metrics.json").read_text())
    assert plain["poses"] == "as given" and "psnr_given_pose" not in plain and "alignment" not in plain
    # The bake renders with gradients too.
    assert main(base + ["--baked", "--align-poses", "--align-steps", "5", "--align-rays", "128"]) == 0
    baked = json.loads((tiny_run / "eval" / "val-aligned" / "metrics.json").read_text())
    assert baked["renderer"] == "baked" and baked["alignment"]["steps"] == 5


@pytest.mark.parametrize("flags, needles", [
    (["--align-poses", "--splats"], ["--align-poses", "--splats"]),
    (["--align-steps", "10"], ["--align-steps", "--align-poses"]),
])
def test_eval_align_poses_bad_combinations_are_one_line_errors(tiny_run, capsys, flags, needles):
    from neuralfields.cli import main

    assert main(["eval", str(tiny_run), "--no-progress"] + flags) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and all(n in err for n in needles), err


def test_config_rejects_what_cannot_be_fitted():
    assert_one_line_error(lambda: PoseAlignmentConfig(rays=0), "pose alignment", "rays")
    assert_one_line_error(lambda: PoseAlignmentConfig(lr=0.0), "pose alignment", "learning rates")
    assert PoseAlignmentConfig(steps=0).steps == 0
    with pytest.raises(NeuralFieldsError):
        PoseAlignmentConfig(steps=-1)
