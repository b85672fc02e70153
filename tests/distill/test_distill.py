"""Progressive Volume Distillation: a tiny hash-grid teacher distilled into other fields."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from neuralfields.cli import main
from neuralfields.config import load_run_config
from neuralfields.distill import DistillConfig, distill_trainer, load_teacher, student_config
from neuralfields.loop import TrainLoop
from neuralfields.distill.active import HardPosePool, important_samples, per_camera_psnr
from neuralfields.selection import ErrorReplay, Selection
from neuralfields.distill.inherit import inherit_color_head, transfer_grid
from neuralfields.distill.losses import build_projection, default_density_clamp, density_loss
from neuralfields.distill.poses import PoseSampler
from neuralfields.fields import build_field
from neuralfields.scene_model import load_model
from neuralfields.render import OccupancyGrid

SMALL_NGP = {"n_levels": 4, "n_features": 2, "log2_table": 12, "max_res": 128}
# Few rays per step: enough to exercise every code path of a step in a fraction of a second.
TINY_BATCH = ["train.init_rays=128", "train.max_rays=256", "train.target_samples=2048"]


def tiny_trainer(teacher_dir: Path, student: str, steps: int, options: dict | None = None,
                 dcfg: DistillConfig | None = None) -> TrainLoop:
    teacher, _, _ = load_teacher(teacher_dir)
    cfg = student_config(teacher.cfg, student, steps)
    cfg.field.options = dict(options or {})
    cfg.train.init_rays, cfg.train.max_rays, cfg.train.target_samples = 128, 256, 2048
    return distill_trainer(cfg, teacher, dcfg, val_scene=None, run_dir=None, progress=False)


# ------------------------------------------------------------------------ distillation quality


@pytest.fixture(scope="module")
def distilled(tiny_run, tmp_path_factory) -> Path:
    """The fixture teacher (ngp, 300 steps) distilled into a tri-plane field through the CLI."""
    out = tmp_path_factory.mktemp("distill") / "triplane"
    args = ["distill", str(tiny_run), "--student", "triplane", "--steps", "100", "--output", str(out), "--no-progress",
            "--set", "train.checkpoint_every=50", "--set", "train.eval_every=50"]
    assert main(args) == 0
    return out


def test_distilled_student_is_within_a_small_margin_of_its_teacher(distilled, tiny_run):
    summary = json.loads((distilled / "summary.json").read_text())
    teacher_summary = json.loads((tiny_run / "summary.json").read_text())
    # Against the teacher's renders (no ground truth): 28 dB is an RMS difference of 4%, well below
    # the teacher's own error against the ground truth (about 23 dB, 7% RMS). Measured: ~32 dB.
    assert summary["teacher_psnr"] > 28.0, summary
    # Against the ground truth: the student inherits the teacher's errors plus its own 4%, which
    # costs at most about 1 dB (errors add in mean square); 100 steps of tri-plane training from
    # scratch reach only about 19 dB here. Measured: within 0.1 dB of the teacher.
    assert summary["val_psnr"] > teacher_summary["val_psnr"] - 1.0, (summary, teacher_summary)
    assert summary["steps"] == 100 and summary["teacher_field"] == "ngp"


def test_distilled_run_folder_loads_and_evaluates_like_a_trained_run(distilled, tiny_run, capsys):
    cfg, teacher_cfg = load_run_config(distilled), load_run_config(tiny_run)
    assert cfg.field.name == "triplane" and cfg.data.path == teacher_cfg.data.path
    assert cfg.render == teacher_cfg.render  # the inherited grid has the teacher's resolution
    model, state = load_model(distilled)
    teacher, _ = load_model(tiny_run)
    assert state["step"] == 100 and type(model.field).__name__ == "TriplaneField"
    assert torch.equal(model.grid.binary, teacher.grid.binary)  # inherited occupancy
    img = model.render_camera(model.info.cameras, 0)
    assert img["rgb"].shape == (48, 48, 3) and img["rgb"].std() > 0.05
    assert main(["eval", str(distilled), "--split", "test", "--max-images", "2", "--no-progress"]) == 0
    result = json.loads((distilled / "eval" / "test" / "metrics.json").read_text())
    assert result["step"] == 100 and result["psnr"] > 20
    info = json.loads((distilled / "distill.json").read_text())
    assert info["grid"] == "copied" and info["projection"] == "identity" and info["pose_sampler"] == "shell"
    rows = [json.loads(line) for line in (distilled / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("stage") == 3 and "loss_rgb" in r for r in rows) and any("val_psnr" in r for r in rows)
    assert "PSNR" in capsys.readouterr().out


# ------------------------------------------------------------------------------ stages


def test_stages_switch_at_the_configured_steps(tiny_run):
    dcfg = DistillConfig(feature_steps=3, field_steps=4)
    trainer = tiny_trainer(tiny_run, "ngp", 10, SMALL_NGP, dcfg)
    assert trainer.parts["distill"].state.inherited == ["color_net"]  # same colour head shape and same colours
    assert trainer.objective.schedule.boundaries() == (3, 7)

    def head() -> dict:
        return {k: v.clone() for k, v in trainer.model.field.color_net.state_dict().items()}

    start = head()
    stats = [trainer.train_step() for _ in range(3)]
    # Stage 1 trains only the features: the (inherited) colour head gets no gradient.
    after_features = head()
    assert all(torch.equal(start[k], v) for k, v in after_features.items())
    stats += [trainer.train_step() for _ in range(7)]
    assert any(not torch.equal(after_features[k], v) for k, v in head().items())
    assert [s["stage"] for s in stats] == [1] * 3 + [2] * 4 + [3] * 3
    terms = [{k for k in s if k.startswith("loss_")} for s in stats]
    assert terms[:3] == [{"loss_feature"}] * 3
    assert terms[3:7] == [{"loss_feature", "loss_density", "loss_color"}] * 4
    assert terms[7:] == [{"loss_density", "loss_color", "loss_rgb"}] * 3
    assert all(math.isfinite(s["loss"]) for s in stats)


def test_default_stage_lengths_follow_pvd_fractions():
    assert DistillConfig().stage_lengths(30000) == (2000, 3000)
    assert DistillConfig(feature_steps=5).stage_lengths(300) == (5, 30)


# ------------------------------------------------------------------------------ active learning


def test_active_learning_revisits_hard_poses_and_replays_hard_rays(tiny_run):
    dcfg = DistillConfig()
    dcfg.active.enabled = True
    trainer = tiny_trainer(tiny_run, "triplane", 4, {"resolutions": [16, 32]}, dcfg)
    trainer.train_step()
    pose_pool, ray_pool = trainer.source.pose_pool, trainer.source.ray_pool
    assert 0 < len(pose_pool) <= dcfg.active.pose_pool_size and len(ray_pool) > 0
    worst, pooled = pose_pool.psnr[0].item(), len(ray_pool)
    batch = trainer.source.next(200)
    assert (batch.camera == -1).sum() == min(pooled, round(200 * dcfg.active.ray_replay_fraction))  # replayed
    assert len(batch.cameras) == dcfg.poses.cameras_per_step
    assert worst <= pose_pool.psnr.min().item() or len(pose_pool) == 0  # the worst was popped
    for _ in range(3):
        assert math.isfinite(trainer.train_step()["loss"])


def test_pools_and_sample_selection():
    pool = HardPosePool(capacity=2)
    cams = load_cameras(3)
    pool.add(cams, None, torch.tensor([30.0, 10.0, 20.0]))
    assert pool.psnr.tolist() == [10.0, 20.0]
    popped, _ = pool.pop_worst(1)
    assert torch.equal(popped.c2w, cams.c2w[1:2]) and pool.psnr.tolist() == [20.0]

    rays = ErrorReplay(capacity=3, keep=0.2)
    origins, dirs = torch.zeros(10, 3), torch.arange(30.0).reshape(10, 3)
    rays.offer({"origins": origins, "dirs": dirs, "times": None}, torch.arange(10.0))
    assert sorted(rays.items["dirs"][:, 0].tolist()) == [24.0, 27.0]  # the two largest errors
    rays.offer({"origins": origins[:5], "dirs": dirs[:5], "times": None}, torch.arange(5.0))
    assert sorted(rays.errors.tolist()) == [4.0, 8.0, 9.0]
    worst = rays.take(Selection("int"), 1)
    assert worst["dirs"][0, 0].item() == 27.0 and len(rays) == 2  # INT takes the largest error first
    rays.offer({"origins": origins, "dirs": dirs, "times": None}, torch.arange(10.0) + 100)
    assert sorted(rays.errors.tolist()) == [4.0, 108.0, 109.0]  # capacity 3: the oldest left
    assert rays.take(Selection("int"), 5)["origins"].shape[0] == 3 and len(rays) == 0

    w = torch.tensor([0.5, 0.0, 0.3, 0.001, 0.15, 0.049])
    assert important_samples(w, 0.9).tolist() == [True, False, True, False, True, False]
    assert important_samples(w, 1.0).all()
    psnr = per_camera_psnr(torch.full((20,), 0.01), torch.tensor([0] * 10 + [1] * 5 + [-1] * 5), 3)
    assert psnr[0].item() == pytest.approx(20.0) and psnr[1:].isnan().all()


def load_cameras(n: int):
    from neuralfields.cameras import Cameras, look_at

    eye = torch.tensor([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]])[:n]
    return Cameras.create(look_at(eye, torch.zeros(n, 3), torch.tensor([1.0, 1.0, 1.0])), 50, 50, 24, 24, 48, 48)


# ------------------------------------------------------------------------------ poses, losses, inheritance


def test_pose_sampler_draws_around_the_training_distribution(tiny_run):
    model, _ = load_model(tiny_run)
    info = model.info
    sampler = PoseSampler(info.cameras, info.aabb, None, DistillConfig().poses)
    assert sampler.kind == "shell"
    cams, times = sampler.draw(200)
    assert times is None and len(cams) == 200
    centre = torch.as_tensor(sampler.centre, dtype=torch.float32)
    pos = cams.c2w[:, :, 3]
    dist = (pos - centre).norm(dim=-1)
    lo, hi = sampler.radius_range
    assert ((dist > lo - 1e-3) & (dist < hi + 1e-3)).all()
    forward = -cams.c2w[:, :, 2]
    to_centre = (centre - pos) / dist[:, None]
    fresh = (forward * to_centre).sum(-1) > 0.999  # sampled poses look at the centre
    assert fresh.float().mean() >= 0.7
    # Not just the training views: most poses are new.
    train_pos = info.cameras.c2w[:, :, 3]
    nearest = torch.cdist(pos, train_pos).min(dim=1).values
    assert (nearest > 1e-3).float().mean() > 0.6
    up = torch.as_tensor(sampler.frame.up, dtype=torch.float32)
    elevation = torch.asin(((pos - centre) / dist[:, None]) @ up)
    e_lo, e_hi = sampler.elevation_range
    assert (elevation > e_lo - 1e-3).all() and (elevation < e_hi + 1e-3).all()
    jittered = sampler.jitter(cams[torch.arange(5)], 5.0, 0.0)
    assert torch.allclose((jittered.c2w[:, :, 3] - centre).norm(dim=-1), dist[:5], atol=1e-4)


def test_density_loss_clamps_without_trapping_the_student():
    low, high = default_density_clamp(3 * math.sqrt(3) / 512)  # the lego preset's step
    assert low == pytest.approx(-2.32, abs=0.01) and high == pytest.approx(6.89, abs=0.01)
    student = torch.tensor([-10.0, 12.0, -10.0, 20.0, 1.0], requires_grad=True)
    teacher = torch.tensor([3.0, 3.0, -30.0, 40.0, 1.0])
    density_loss(student, teacher, low, high).backward()
    g = student.grad
    assert g[0] < 0 and g[1] > 0  # pulled into range towards the teacher from either side
    assert g[2] == 0 and g[3] == 0 and g[4] == 0  # both beyond the same bound, or equal: nothing to learn


def test_projection_and_colour_head_inheritance():
    ngp = build_field("ngp", SMALL_NGP)
    same_head = build_field("ngp", {"n_levels": 2, "log2_table": 10})
    assert inherit_color_head(ngp, same_head) == ["color_net"]
    assert torch.equal(same_head.color_net[0].weight, ngp.color_net[0].weight)
    triplane = build_field("triplane", {"resolutions": [8]})
    before = {k: v.clone() for k, v in triplane.state_dict().items()}
    assert inherit_color_head(ngp, triplane) == []  # a different head: left untouched
    assert all(torch.equal(before[k], v) for k, v in triplane.state_dict().items())
    nerf = build_field("nerf", {"hidden": 32, "layers": 2, "skips": []})
    assert inherit_color_head(ngp, nerf) == []
    proj = build_projection("auto", nerf.geo_dim, ngp.geo_dim)
    assert not proj.is_identity and proj(torch.zeros(4, 32)).shape == (4, ngp.geo_dim)
    assert build_projection("auto", 15, 15).is_identity


def test_grid_transfer_resamples_other_resolutions():
    aabb = torch.tensor([[-1.0, -1, -1], [1, 1, 1]])
    src = OccupancyGrid(aabb, resolution=8)
    src.binary.zero_()
    src.binary[0, : 8 * 8 * 4] = True  # the lower half (z < 0) is occupied
    dst = OccupancyGrid(aabb, resolution=4)
    assert transfer_grid(src, dst) == "resampled"
    assert dst.binary[0, : 4 * 4 * 2].all() and not dst.binary[0, 4 * 4 * 2:].any()
    same = OccupancyGrid(aabb, resolution=8)
    assert transfer_grid(src, same) == "copied" and torch.equal(same.binary, src.binary)


# ------------------------------------------------------------------------------ errors


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_bad_teacher_runs_give_one_line_errors(tiny_run, tmp_path, capsys):
    def run(teacher: Path, student: str = "triplane") -> str:
        assert main(["distill", str(teacher), "--student", student, "--output", str(tmp_path / "out"),
                     "--no-progress"]) == 2
        return error_line(capsys)

    assert "does not exist" in run(tmp_path / "missing")

    no_ckpt = tmp_path / "no_ckpt"
    no_ckpt.mkdir()
    shutil.copy(tiny_run / "config.json", no_ckpt / "config.json")
    assert "no checkpoint" in run(no_ckpt)

    garbage = tmp_path / "garbage"
    (garbage / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_run / "config.json", garbage / "config.json")
    (garbage / "checkpoints" / "step_000300.pt").write_bytes(b"this is not a checkpoint")
    err = run(garbage)
    assert "step_000300.pt" in err and "unreadable checkpoint" in err

    unknown = tmp_path / "unknown"
    shutil.copytree(tiny_run, unknown, ignore=shutil.ignore_patterns("eval"))
    cfg = json.loads((unknown / "config.json").read_text())
    cfg["field"]["name"] = "no-such-field"
    (unknown / "config.json").write_text(json.dumps(cfg))
    err = run(unknown)
    assert "config.json" in err and "unknown field 'no-such-field'" in err

    mismatch = tmp_path / "mismatch"
    shutil.copytree(tiny_run, mismatch, ignore=shutil.ignore_patterns("eval"))
    cfg = json.loads((mismatch / "config.json").read_text())
    cfg["field"]["options"]["n_levels"] = 3
    (mismatch / "config.json").write_text(json.dumps(cfg))
    assert "does not match" in run(mismatch)

    assert "unknown student 'bogus'" in run(tiny_run, "bogus")
    assert main(["distill", str(tiny_run), "--student", "ngp", "--set", "distill.active.nope=1"]) == 2
    assert "distill.active.nope" in error_line(capsys)


def test_distillation_resumes_from_its_checkpoint(distilled, tiny_run, tmp_path, capsys):
    run = tmp_path / "resumed"
    shutil.copytree(distilled, run)
    assert main(["distill", str(tiny_run), "--student", "triplane", "--steps", "110", "--output", str(run),
                 "--resume", "--no-progress"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text())["steps"] == 110
    # A plain training checkpoint in a distillation folder cannot be resumed as a distillation.
    for ckpt in (run / "checkpoints").iterdir():
        ckpt.unlink()
    newest = sorted((tiny_run / "checkpoints").iterdir())[-1]
    shutil.copy(newest, run / "checkpoints" / newest.name)
    assert main(["distill", str(tiny_run), "--student", "triplane", "--steps", "400", "--output", str(run),
                 "--resume", "--no-progress"]) == 2
    assert "not a distillation checkpoint" in error_line(capsys)
