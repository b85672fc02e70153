"""The shared core: one sample path, safe and portable checkpoints, one loop, imports one way."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config
from neuralfields.cameras import Cameras
from neuralfields.cli import main
from neuralfields.errors import NeuralFieldsError
from neuralfields.scene_model import SceneInfo, build_model, load_model
from neuralfields.render import RayBatch
from neuralfields.run.checkpoints import convert_checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint

REFERENCE = Path(__file__).parent / "data" / "reference_render.pt"
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- one sample path


def test_sample_path_renders_the_saved_reference_exactly():
    """The reference holds a demo-scene ngp field, its occupancy grid and the buffers the renderer
    produced before the core was rebuilt around one evaluation function."""
    ref = torch.load(REFERENCE, weights_only=True)
    cfg = tiny_config(Path("unused"))
    cfg.field.options = ref["config"]["field"]
    cfg.render.grid_resolution = ref["config"]["grid_resolution"]
    cfg.render.samples_per_diagonal = ref["config"]["samples_per_diagonal"]
    cameras = Cameras(**ref["cameras"])
    model = build_model(cfg, SceneInfo(ref["aabb"], 1.0, False, cameras))
    model.field.load_state_dict(ref["field"])
    model.grid.load_state_dict(ref["grid"])
    for i, expected in enumerate(ref["buffers"]):
        out = model.render_camera(cameras, i, outputs=("rgb", "depth", "opacity", "normal"))
        assert expected["opacity"].mean() > 0.1  # the reference sees the scene
        for key, value in expected.items():
            torch.testing.assert_close(out[key], value, rtol=0, atol=2e-5, msg=f"view {i} {key}")


def test_training_and_inference_share_the_evaluation(tiny_run):
    """A training render (no jitter) and an inference render of the same rays agree."""
    model, _ = load_model(tiny_run)
    origins, dirs = model.info.cameras.image_rays(0)
    rays = RayBatch(origins.reshape(-1, 3)[:500], dirs.reshape(-1, 3)[:500], background=torch.ones(3))
    samples, _ = model.sampler.sample(rays, model.density, training=False)
    from neuralfields.render import shade

    with torch.no_grad():
        direct = shade(model.field, model.space, samples, rays)
        rendered = model.render_rays(rays)
    torch.testing.assert_close(direct.rgb, rendered.rgb)
    assert direct.per_sample.sigma.shape == (len(samples),) and direct.weights.shape == (len(samples),)


# -------------------------------------------------------------------------------- checkpoints


class Payload:
    """An arbitrary object: unpickling it would run code of the file's choosing."""


def test_checkpoint_with_an_arbitrary_object_is_refused_in_one_line(tiny_run, tmp_path):
    _, state = latest_checkpoint(tiny_run)
    state["extra"] = Payload()
    path = tmp_path / "checkpoints" / "step_000001.pt"
    path.parent.mkdir()
    torch.save(state, path)
    with pytest.raises(NeuralFieldsError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "refusing to load" in message
    assert "Payload" in message and "python -m neuralfields.run.checkpoints" in message


def test_old_checkpoint_with_numpy_values_converts(tiny_run, tmp_path):
    _, state = latest_checkpoint(tiny_run)
    state["scene"]["aabb_scale"] = np.float64(1.0)  # what an older writer might have stored
    state["extra"] = np.arange(3)
    path = tmp_path / "step_000001.pt"
    torch.save(state, path)
    with pytest.raises(NeuralFieldsError, match="refusing to load"):
        load_checkpoint(path)
    convert_checkpoint(path)
    converted = load_checkpoint(path)
    assert converted["scene"]["aabb_scale"] == 1.0 and torch.equal(converted["extra"], torch.arange(3))
    assert (tmp_path / "step_000001.pt.orig").exists()


def retag_storages(path: Path, location: str) -> None:
    """Rewrite a saved file as if its tensors had been saved from ``location`` (e.g. a GPU)."""
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    pkl = next(n for n in entries if n.endswith("data.pkl"))
    cpu = b"X\x03\x00\x00\x00cpu"
    assert cpu in entries[pkl]
    entries[pkl] = entries[pkl].replace(cpu, b"X" + len(location).to_bytes(4, "little") + location.encode())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    path.write_bytes(buffer.getvalue())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks loading GPU-saved tensors on a machine without one")
def test_checkpoint_written_on_a_gpu_loads_on_the_cpu(tiny_run, tmp_path):
    run = tmp_path / "gpu-run"
    run.mkdir()
    (run / "config.json").write_text((tiny_run / "config.json").read_text())
    _, state = latest_checkpoint(tiny_run)
    path = save_checkpoint(run, 7, state)
    retag_storages(path, "cuda:0")
    with pytest.raises(RuntimeError):  # what a plain torch.load does with it here
        torch.load(path, weights_only=True)
    model, loaded = load_model(run, device="cpu")
    assert loaded["step"] == state["step"] and model.device.type == "cpu"
    original, _ = load_model(tiny_run)
    cams = model.info.cameras
    assert torch.equal(model.render_camera(cams, 0)["rgb"], original.render_camera(cams, 0)["rgb"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_training_and_cpu_evaluation(demo_dir, tmp_path):
    from neuralfields.data import load_data
    from neuralfields.train.scene import scene_trainer

    cfg = tiny_config(demo_dir, steps=200)
    run = tmp_path / "cuda"
    loop = scene_trainer(cfg, load_data(cfg.data, "train"), load_data(cfg.data, "val"), run, progress=False,
                         device="cuda")
    summary = loop.fit()
    assert loop.model.device.type == "cuda" and summary["val_psnr"] > 18
    model, _ = load_model(run, device="cpu")
    val = load_data(cfg.data, "val")
    cpu = model.render_camera(val.cameras, 0)["rgb"]
    gpu = loop.model.render_camera(val.cameras, 0)["rgb"]
    torch.testing.assert_close(cpu, gpu, rtol=0, atol=1e-3)


# ----------------------------------------------------------------------------------- devices


def test_device_flag_is_checked_and_announced(tiny_run, tmp_path, capsys):
    assert main(["eval", str(tiny_run), "--device", "cpu", "--max-images", "1", "--no-progress"]) == 0
    assert "device: cpu" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert main(["eval", str(tiny_run), "--device", "cuda", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert "no CUDA device" in err and "\n" not in err
    assert main(["eval", str(tiny_run), "--device", "tpu9", "--no-progress"]) == 2
    assert "unknown device" in capsys.readouterr().err


# ------------------------------------------------------------------------------ one loop


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


# ------------------------------------------------------------------------------ imports


def test_consumers_of_a_run_never_import_the_trainer():
    code = ("import sys; import neuralfields.scene_model, neuralfields.fit, neuralfields.distill, neuralfields.export.mesh, "
            "neuralfields.export.tsdf, neuralfields.export.video, neuralfields.export.pointcloud, viewer; "
            "bad = sorted(m for m in sys.modules if m == 'neuralfields.train' or m.startswith('neuralfields.train.')); "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"imported the trainer: {result.stdout} {result.stderr[-500:]}"


def test_tsdf_fusion_does_not_import_the_mesher():
    """Mesh export uses TSDF fusion as one of its meshers; both share the volume module, so the
    import goes one way."""
    assert "from .mesh" not in (ROOT / "neuralfields" / "export" / "tsdf.py").read_text()
