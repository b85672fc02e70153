"""Scene presets: the GPU variants load with the sizes they promise; the CPU presets stay put."""

from __future__ import annotations

import pytest

from neuralfields.config import available_presets, load_preset

CAPTURES = {"fox": 1, "cup": 1, "bird": 1, "fern": 8}  # fern: images_8 is the largest copy there is


def test_lego_gpu_is_instant_ngps_size():
    cfg = load_preset("lego-gpu")
    assert cfg.data.path.endswith("nerf_synthetic/lego") and cfg.data.downscale == 1
    assert cfg.field.name == "ngp"
    assert {k: cfg.field.options[k] for k in ("n_levels", "log2_table", "max_res")} == {
        "n_levels": 16, "log2_table": 19, "max_res": 2048}
    assert cfg.train.target_samples == 262144
    # Ray bounds that match the sample target: from dense early batches to ~4 samples per ray.
    assert cfg.train.init_rays * 16 == cfg.train.target_samples and cfg.train.max_rays * 4 == cfg.train.target_samples
    assert cfg.render.grid_resolution == 128
    assert cfg.train.time_budget and cfg.train.steps >= 100 * cfg.train.time_budget  # time paces the lr


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_capture_gpu_presets_are_full_size_and_larger(name):
    cpu, gpu = load_preset(name), load_preset(f"{name}-gpu")
    assert gpu.data.path == cpu.data.path and gpu.data.downscale == CAPTURES[name] <= cpu.data.downscale
    # Forward-facing fern gets NDC, the 360-degree captures a contracted space.
    space = "ndc" if name == "fern" else "contract"
    assert gpu.data.background == cpu.data.background and gpu.render.space == cpu.render.space == space
    assert gpu.field.options["appearance_dim"] == cpu.field.options["appearance_dim"]
    for key in ("n_levels", "log2_table", "max_res"):
        assert gpu.field.options[key] > cpu.field.options[key], key
    assert gpu.train.target_samples > cpu.train.target_samples and gpu.train.max_rays > cpu.train.max_rays
    assert gpu.train.time_budget and gpu.train.steps >= 100 * gpu.train.time_budget


def test_cpu_presets_keep_their_sizes():
    assert {f"{n}-gpu" for n in ["lego", *CAPTURES]} <= set(available_presets())
    lego = load_preset("lego")
    assert lego.data.downscale == 4 and lego.field.options["n_levels"] == 8 and lego.train.target_samples == 32768
    assert lego.train.time_budget is None and not lego.train.mixed_precision
    for name, downscale in {"fox": 4, "cup": 4, "bird": 4, "fern": 8}.items():
        cfg = load_preset(name)
        assert cfg.data.downscale == downscale and cfg.field.options["n_levels"] == 12
        assert cfg.train.target_samples == 65536 and cfg.train.time_budget is None
