"""The CUDA speed switches (``neuralfields/speed.py``): each one changes nothing on the CPU; the
bf16 path is checked with the CPU's own bf16 autocast standing in for CUDA's."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch

from conftest import tiny_config
from neuralfields.data import load_data
from neuralfields.device import resolve_device
from neuralfields.render.rays import RayBatch
from neuralfields.scene_model import SceneInfo, build_model
from neuralfields.speed import enable_tf32, float_outputs, mlp_autocast
from neuralfields.train.scene import PhotometricObjective


@pytest.fixture
def tf32_flags():
    """The TF32 flags as they were, restored after the test."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield before
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_tf32_only_for_cuda_devices(tf32_flags):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    resolve_device("cpu")
    enable_tf32(torch.device("cpu"))
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and quietly
        enable_tf32("cuda:0")  # the flags are process-wide: settable without a device
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_autocast_only_on_cuda_when_asked():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "CUDA is not available" warning on a CPU machine
        for device, enabled in (("cpu", True), ("cpu", False), ("cuda", False)):
            assert isinstance(mlp_autocast(device, enabled), contextlib.nullcontext)
    if torch.cuda.is_available():
        assert isinstance(mlp_autocast("cuda", True), torch.autocast)


@pytest.fixture
def tiny_model(demo_dir):
    cfg = tiny_config(demo_dir)
    scene = load_data(cfg.data, "train")
    torch.manual_seed(0)
    return build_model(cfg, SceneInfo.from_scene(scene), "cpu"), scene


def rays_of(scene, n: int = 64) -> RayBatch:
    img, y, x = torch.zeros(n, dtype=torch.long), torch.arange(n) % scene.height, torch.arange(n) // 2
    origins, dirs = scene.cameras.rays(img, x.float() + 0.5, y.float() + 0.5)
    white = torch.ones(n, 3)
    return RayBatch(origins, dirs, None, img, white, white)


def test_bf16_networks_with_float32_compositing(tiny_model):
    model, scene = tiny_model
    inner = []  # dtypes of a layer inside a network: bf16 under autocast
    first_linear = next(m for m in model.field.modules() if isinstance(m, torch.nn.Sequential))[0]
    first_linear.register_forward_hook(lambda m, i, o: inner.append(o.dtype))
    handles = float_outputs(model)
    assert handles  # the field's networks (and the sampler's, if it has any)
    batch = rays_of(scene)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):  # CUDA's bf16 autocast on a CPU
        out = model.render_rays(batch, training=True)
    assert torch.bfloat16 in inner
    assert out.rgb.dtype == out.weights.dtype == out.per_sample.rgb.dtype == out.per_sample.sigma.dtype == torch.float32
    loss = ((out.rgb - batch.pixels) ** 2).mean()
    loss.backward()
    grads = [p.grad for p in model.field.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() and g.dtype == torch.float32 for g in grads)
    # Outside autocast the hooks change nothing.
    for h in handles:
        h.remove()
    with torch.no_grad():
        plain = model.render_rays(batch).rgb
    float_outputs(model)
    with torch.no_grad():
        torch.testing.assert_close(model.render_rays(batch).rgb, plain, rtol=0, atol=0)


def test_mixed_precision_is_ignored_on_the_cpu(tiny_model):
    model, scene = tiny_model
    objective = PhotometricObjective(model, mixed_precision=True)
    assert not objective.mixed_precision
    assert not any(m._forward_hooks for m in model.modules())
    assert torch.isfinite(objective(rays_of(scene), 0).loss)
