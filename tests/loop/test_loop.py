"""One loop: fitting (library and CLI, with resume) and distillation run the same ``TrainLoop``."""

from __future__ import annotations

import json

import numpy as np
import torch

from neuralfields.cli import main
from neuralfields.run.checkpoints import load_checkpoint


def test_fit_goes_through_the_loop_and_resumes(tmp_path):
    from neuralfields.fit.image import FitConfig, fit_image

    rng = np.random.default_rng(0)
    image = np.clip(rng.random((12, 12, 1)).repeat(2, 0).repeat(2, 1), 0, 1).astype(np.float32)
    out = tmp_path / "fit"
    options = {"n_levels": 4, "log2_table": 10, "max_res": 32}
    full = fit_image(image, "ngp", options, FitConfig(steps=60, lr=1e-2, checkpoint_every=30), progress=False,
                     out_dir=out)
    assert json.loads((out / "summary.json").read_text())["steps"] == 60
    # A run stopped at step 30 (its last checkpoint) continues to the same result.
    (out / "checkpoints" / "step_000060.pt").unlink()
    assert load_checkpoint(out / "checkpoints" / "step_000030.pt")["step"] == 30
    resumed = fit_image(image, "ngp", options, FitConfig(steps=60, lr=1e-2, checkpoint_every=30), progress=False,
                        out_dir=out, resume=True)
    assert load_checkpoint(out / "checkpoints" / "step_000060.pt")["step"] == 60
    assert full.psnr > 20.0, full.psnr
    assert abs(resumed.psnr - full.psnr) < 1e-3, (resumed.psnr, full.psnr)


def test_fit_cli_resume_and_refusal(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(1).random((16, 16, 3)) * 255).astype(np.uint8)).save(path)
    out = tmp_path / "out"
    args = ["fit", str(path), "--field", "ngp", "--set", "n_levels=4", "--set", "log2_table=10", "--output", str(out),
            "--no-progress"]
    assert main(args + ["--steps", "20"]) == 0
    assert main(args + ["--steps", "30"]) == 2  # checkpoints exist: refuse to overwrite silently
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--steps", "30", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["steps"] == 30


def test_distillation_is_the_same_loop(tiny_run):
    from neuralfields.distill import distill_trainer, load_teacher, student_config
    from neuralfields.loop import TrainLoop

    teacher, _, _ = load_teacher(tiny_run)
    cfg = student_config(teacher.cfg, "ngp", 3)
    cfg.field.options = {"n_levels": 4, "log2_table": 12, "max_res": 128}
    loop = distill_trainer(cfg, teacher, val_scene=None, run_dir=None, progress=False)
    assert type(loop) is TrainLoop  # no subclass: a batch source and an objective plugged into the loop
    assert loop.model.grid is not teacher.grid and torch.equal(loop.model.grid.binary, teacher.grid.binary)
    stats = loop.fit()
    assert stats["steps"] == 3 and "teacher_psnr" in stats
