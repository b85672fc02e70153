"""The scene model: one sample path (it renders the saved references exactly), training and
inference share the evaluation, checkpoints of models load on another device, and renders of fixed
unbounded models stay what they were (the stored buffers came from the code before the scene model
owned its renderer; scripts/make_reference_renders.py wrote them)."""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from neuralfields.cameras import Cameras
from neuralfields.scene_model import SceneInfo, build_model, load_model
from neuralfields.render import RayBatch
from neuralfields.run.checkpoints import latest_checkpoint, save_checkpoint

ASSETS = Path(__file__).resolve().parent / "assets"
REFERENCE = ASSETS / "reference_render.pt"
REFERENCE_UNBOUNDED = ASSETS / "reference_renders_unbounded.pt"
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- one sample path


def test_sample_path_renders_the_saved_reference_exactly():
    """The reference holds a demo-scene ngp field, its occupancy grid and the buffers it rendered
    (written by the marcher with host-constant step sequences; before it, views agreed to 40 dB)."""
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


# ----------------------------------------------------------------------- checkpoints of models


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


# ---------------------------------------------------------- stored renders of unbounded models


def reference_module():
    spec = importlib.util.spec_from_file_location("make_reference_renders", ROOT / "scripts" / "make_reference_renders.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", ["proposal", "occupancy"])
def test_unbounded_models_render_the_stored_reference(case):
    """Contracted space with appearance codes, through each sampler (the occupancy grid prunes
    through the density function it is handed)."""
    torch.set_num_threads(1)
    expected = torch.load(REFERENCE_UNBOUNDED, weights_only=True)[case]
    rendered = reference_module().render_case(case)
    for i, (ours, theirs) in enumerate(zip(rendered, expected)):
        assert theirs["depth"].std() > 0.01  # the reference sees structure, not a wall at one depth
        for key, value in theirs.items():
            torch.testing.assert_close(ours[key], value, rtol=0, atol=2e-5, msg=f"{case} view {i} {key}")
