"""The same commands on a CUDA device (skipped without one; ``scripts/gpu_check.sh`` runs them).

Each test runs a whole path on ``cuda`` and checks it against the CPU or a quality bar, so a
stray CPU tensor anywhere in it fails with a device-mismatch error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_config
from neuralfields.cli import main
from neuralfields.data import load_data
from neuralfields.scene_model import load_model

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_train_render_export_on_cuda(demo_dir, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(demo_dir), "--steps", "300", "--output", str(run), "--device", "cuda",
            "--no-progress", "--set", "field.options.n_levels=8", "--set", "field.options.log2_table=14",
            "--set", "render.grid_resolution=32"]
    assert main(args) == 0
    assert "device: cuda" in capsys.readouterr().out
    assert main(["eval", str(run), "--device", "cuda", "--no-progress"]) == 0
    assert main(["render", str(run), "--device", "cuda", "--seconds", "1", "--fps", "4", "--resolution", "48x48",
                 "--outputs", "rgb,depth,normal", "--out", str(tmp_path / "v.mp4"), "--no-progress"]) == 0
    assert main(["export", "mesh", str(run), "--device", "cuda", "--resolution", "64",
                 "--out", str(tmp_path / "m.ply")]) == 0
    assert main(["export", "pointcloud", str(run), "--device", "cuda", "--out", str(tmp_path / "p.ply")]) == 0
    gpu, _ = load_model(run, device="cuda")
    cpu, _ = load_model(run, device="cpu")
    val = load_data(gpu.cfg.data, "val")
    torch.testing.assert_close(gpu.render_camera(val.cameras, 0)["rgb"], cpu.render_camera(val.cameras, 0)["rgb"],
                               rtol=0, atol=2e-3)


def test_distill_and_fit_on_cuda(tiny_run, tmp_path):
    out = tmp_path / "student"
    assert main(["distill", str(tiny_run), "--student", "triplane", "--steps", "60", "--output", str(out),
                 "--device", "cuda", "--no-progress", "--active-learning",
                 "--set", "field.options.resolutions=[16,32]"]) == 0
    from neuralfields.fit.image import FitConfig, fit_image

    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    result = fit_image(image, "siren", None, FitConfig(steps=200), progress=False, device="cuda")
    assert result.psnr > 18


def test_compiled_hash_grid_on_cuda(demo_dir):
    from neuralfields.train.scene import scene_trainer

    cfg = tiny_config(demo_dir, steps=150)
    cfg.train.compile = True
    loop = scene_trainer(cfg, load_data(cfg.data, "train"), load_data(cfg.data, "val"), None, progress=False,
                         device="cuda")
    assert loop.fit()["val_psnr"] > 18
