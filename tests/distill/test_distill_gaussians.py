"""Distilling a trained field into Gaussian splats: the run improves on its point-cloud start and
tracks its teacher, resumes, exports splat files viewers read, is scored by ``eval --splats``,
and bad input is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import config_only_copy
from neuralfields.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["--set", "splats.resolution=48", "--set", "splats.init_views=6", "--set", "splats.init_points=2000",
         "--set", "train.eval_every=0", "--set", "train.eval_images=4", "--no-progress"]


def teacher_copy(tiny_run: Path, dest: Path) -> Path:
    """The trained run's config and newest checkpoint (the splats are written inside it)."""
    dest.mkdir(parents=True)
    shutil.copy(tiny_run / "config.json", dest / "config.json")
    (dest / "checkpoints").mkdir()
    newest = sorted((tiny_run / "checkpoints").glob("step_*.pt"))[-1]
    shutil.copy(newest, dest / "checkpoints" / newest.name)
    return dest


@pytest.fixture(scope="module")
def splat_run(tiny_run, tmp_path_factory) -> Path:
    run = teacher_copy(tiny_run, tmp_path_factory.mktemp("splats") / "tiny")
    assert main(["distill", str(run), "--student", "gaussians", "--steps", "60", *SMALL]) == 0
    return run


def test_distillation_improves_on_the_point_cloud_and_tracks_the_teacher(tiny_run):
    from neuralfields.distill import load_teacher
    from neuralfields.distill.gaussians import SplatDistillConfig, splat_distill_trainer, splat_student_config
    from neuralfields.distill.pvd import teacher_fidelity
    from neuralfields.data import load_data
    from neuralfields.scoring import score_model

    teacher, _, _ = load_teacher(tiny_run)
    scfg = SplatDistillConfig(resolution=48, init_views=6, init_points=2000)
    cfg = splat_student_config(teacher.cfg, scfg, 150, "unused")
    cfg.train.eval_every, cfg.train.eval_images = 0, None  # the final validation scores every val view
    val = load_data(cfg.data, "val")
    loop = splat_distill_trainer(cfg, teacher, scfg, val, None, progress=False, log=lambda _: None)
    start_fidelity = teacher_fidelity(loop.model, teacher, val)["teacher_psnr"]
    start_val = score_model(loop.model, val)["psnr"]
    initial = len(loop.model.scene)
    summary = loop.fit()
    # Closer to the teacher's renders and to the photographs than the point cloud it started from.
    assert summary["teacher_psnr"] > start_fidelity + 2, (start_fidelity, summary)
    assert summary["val_psnr"] > start_val + 1, (start_val, summary)
    assert summary["val_psnr"] > summary["teacher_val_psnr"] - 5, summary
    assert summary["gaussians"] != initial  # densified and pruned on the way
    assert int(loop.model.scene.active_degree) == 3


def test_splat_run_folder_resumes_exports_and_evaluates(splat_run, tmp_path, capsys):
    from neuralfields.splats.io import read_ply, read_splat

    folder = splat_run / "splats"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["steps"] == 60 and summary["gaussians"] > 100
    assert json.loads((folder / "config.json").read_text())["field"]["name"] == "gaussians"
    capsys.readouterr()
    assert main(["distill", str(splat_run), "--student", "gaussians", "--steps", "70", "--resume",
                 "--output", str(folder), "--no-progress"]) == 0
    assert "resumed from" in capsys.readouterr().out
    resumed = json.loads((folder / "summary.json").read_text())
    assert resumed["steps"] == 70

    assert main(["export", "splats", str(splat_run), "--out", str(tmp_path / "scene.ply")]) == 0
    scene = read_ply(tmp_path / "scene.ply")
    assert len(scene) == resumed["gaussians"] and scene.max_degree == 3
    # The viewer's frame: the scene centre near the origin, cameras 5 units away.
    assert np.abs(np.median(scene.means.detach().numpy(), 0)).max() < 1.5
    assert main(["export", "splats", str(folder), "--out", str(tmp_path / "scene.splat"), "--world"]) == 0
    records = read_splat(tmp_path / "scene.splat")
    assert len(records) == len(scene) and (np.diff(records["scale"].prod(1) * records["rgba"][:, 3]) <= 1e-3).all()

    assert main(["eval", str(splat_run), "--splats", "--no-progress"]) == 0
    metrics = json.loads((splat_run / "eval" / "splats-val" / "metrics.json").read_text())
    assert metrics["renderer"] == "splats" and metrics["psnr"] > 18 and len(metrics["images"]) == 4


def test_bad_input_gets_one_line(tiny_run, tmp_path, capsys):
    bare = config_only_copy(tiny_run, tmp_path / "bare")
    cases = [
        (["distill", str(tiny_run), "--student", "gaussian"], "unknown student 'gaussian'", "ngp", "gaussians"),
        (["distill", str(bare), "--student", "gaussians"], str(bare), "no checkpoint"),
        (["distill", str(tiny_run), "--student", "gaussians", "--set", "splats.nope=1"], "unknown splat setting"),
        (["distill", str(tiny_run), "--student", "gaussians", "--set", "splats.resolution=0"], "splats.resolution"),
        (["export", "splats", str(bare)], str(bare), "no splats yet"),
        (["eval", str(bare), "--splats"], str(bare), "no splats yet"),
        (["eval", str(tiny_run), "--splats", "--baked"], "choose one"),
    ]
    for args, *needles in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and all(n in err for n in needles), err
