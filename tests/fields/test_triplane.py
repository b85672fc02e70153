"""Tests for the tri-plane field (neuralfields.fields.triplane) and the plane encoding."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from neuralfields.config import RunConfig, from_dict, load_preset
from neuralfields.data import load_data
from neuralfields.encodings.planes import PlaneEncoding, temporal_smoothness, total_variation
from neuralfields.errors import NeuralFieldsError
from neuralfields.fields import build_field
from neuralfields.scene_model import load_model
from neuralfields.run.metrics import psnr
from neuralfields.threads import torch_threads
from neuralfields.train.scene import scene_trainer

# Small planes: trains in ~15-30 s on a shared 2-core CPU.
TINY = dict(n_features=8, resolutions=[32, 64], hidden=32)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def triplane_run(demo_dir, tmp_path_factory):
    """A tri-plane run folder trained briefly on the small demo scene, and its trainer."""
    cfg = tiny_config(demo_dir, steps=120, field="triplane", options=dict(TINY))
    cfg.data.scene_box = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]  # the demo geometry fits; finer planes per unit
    cfg.render.samples_per_diagonal = 128
    cfg.train.init_rays = 256
    cfg.train.warmup_steps = 20  # a 120-step run cannot spend 100 warming up
    cfg.train.checkpoint_every = 0
    run_dir = tmp_path_factory.mktemp("runs") / "triplane"
    cfg.output = str(run_dir)
    with torch_threads(1):
        trainer = scene_trainer(cfg, load_data(cfg.data, "train"), load_data(cfg.data, "val"), run_dir, progress=False)
        summary = trainer.fit()
    return run_dir, trainer, summary


def test_triplane_overfits_demo_scene(triplane_run):
    _, _, summary = triplane_run
    assert summary["val_psnr"] > 19.0, summary
    assert summary["num_parameters"] > 0


def test_checkpoint_reload_renders_identically(triplane_run, demo_dir):
    run_dir, trainer, _ = triplane_run
    model, _ = load_model(run_dir)
    scene = load_data(from_dict(RunConfig, trainer.config).data, "val")
    before = trainer.model.render_camera(scene.cameras, 0)["rgb"]
    after = model.render_camera(scene.cameras, 0)["rgb"]
    assert torch.equal(before, after)


def test_param_groups_give_planes_a_higher_lr_without_decay():
    field = build_field("triplane", dict(TINY, plane_lr_scale=10.0))
    groups = field.param_groups(1e-2, 1e-6)
    planes = {id(p) for p in field.encoding.parameters()}
    assert {id(p) for p in groups[0]["params"]} == planes
    assert groups[0]["lr"] == pytest.approx(0.1) and groups[0]["weight_decay"] == 0.0
    assert groups[1]["lr"] == pytest.approx(1e-2)
    assert sum(len(g["params"]) for g in groups) == len(list(field.parameters()))


def test_geo_features_and_shapes():
    field = build_field("triplane", dict(TINY, geo_dim=7))
    x = torch.rand(50, 3) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    sigma, geo = field.density(x)
    rgb = field.color(x, d, geo)
    assert sigma.shape == (50,) and geo.shape == (50, 7) and rgb.shape == (50, 3)
    assert field.geo_dim == 7 and (sigma >= 0).all() and ((rgb >= 0) & (rgb <= 1)).all()
    assert not field.time_dependent


def test_regularization_penalises_rough_planes():
    field = build_field("triplane", dict(TINY, tv_weight=1.0, l1_weight=0.0))
    rough = field.regularization()
    with torch.no_grad():
        for p in field.encoding.planes:
            p.fill_(0.3)
    assert rough.item() > 0 and field.regularization().item() == pytest.approx(0.0, abs=1e-12)
    assert build_field("triplane", dict(TINY, tv_weight=0.0)).regularization() is None


def test_plane_regularisers():
    constant = torch.ones(2, 5, 6)
    assert float(total_variation(constant)) == 0.0
    linear_in_time = torch.arange(5.0)[None, :, None].expand(2, 5, 6)
    assert float(temporal_smoothness(linear_in_time)) == pytest.approx(0.0)
    assert float(total_variation(linear_in_time)) > 0
    enc = PlaneEncoding(4, 4, (8,), time_dims=(3,), time_resolution=5)
    assert len(enc.spatial_planes()) == 3 and len(enc.temporal_planes()) == 3
    assert all(p.shape[1] == 5 for p in enc.temporal_planes())  # time runs along rows
    assert enc.regularization(time_l1=1.0, time_smoothness=1.0).item() == 0.0  # time planes start at 1


def test_plane_encoding_reads_times_in_unit_interval():
    """Time axes take the renderer's ``[0, 1]`` times; features equal sampling the planes at
    ``2 t - 1``, as the dynamic fields did before the encoding mapped times itself."""
    torch.manual_seed(0)
    enc = PlaneEncoding(4, 3, (6, 9), time_dims=(3,), time_resolution=5)
    with torch.no_grad():
        for p in enc.temporal_planes():
            p.uniform_(0.5, 1.5)
    x = torch.cat([torch.rand(200, 3) * 2 - 1, torch.rand(200, 1)], dim=-1)
    old = torch.cat([x[:, :3], x[:, 3:] * 2.0 - 1.0], dim=-1)
    reference, k = [], 0
    for _ in enc.resolutions:
        acc = 1.0
        for a, b in enc.pairs:
            grid = old[:, [a, b]].reshape(1, -1, 1, 2)
            acc = acc * torch.nn.functional.grid_sample(enc.planes[k][None], grid, align_corners=True,
                                                        padding_mode="border")[0, :, :, 0].t()
            k += 1
        reference.append(acc)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), torch.cat(reference, dim=-1), rtol=1e-6, atol=1e-6)


def test_bad_options_raise_one_line_errors():
    with pytest.raises(NeuralFieldsError, match="reduce"):
        build_field("triplane", dict(reduce="max"))
    with pytest.raises(NeuralFieldsError, match="resolutions"):
        build_field("triplane", dict(resolutions=[1]))
    with pytest.raises(NeuralFieldsError, match="unknown key"):
        build_field("triplane", dict(n_planes=3))


def test_two_dimensional_plane_fits_an_image():
    """in_dim=2: one plane per resolution (a multi-resolution 2D grid) fits an image."""
    torch.manual_seed(0)
    field = build_field("triplane", dict(n_features=8, resolutions=[16, 32, 64], hidden=32, geo_dim=8),
                        in_dim=2, view_dependent=False)
    assert len(field.encoding.planes) == 3  # a single plane per level
    n = 48
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    coords = torch.stack([xs, ys], dim=-1).reshape(-1, 2)
    disc = ((coords - torch.tensor([0.3, -0.2])).norm(dim=-1) < 0.4).float()
    target = torch.stack([0.5 + 0.4 * coords[:, 0], 0.5 + 0.4 * coords[:, 1], 0.2 + 0.7 * disc], dim=-1)
    opt = torch.optim.Adam(field.param_groups(1e-2, 0.0), eps=1e-15)
    for _ in range(300):
        rgb = field.color(coords, None, field.raw_density(coords)[1])
        loss = torch.mean((rgb - target) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        rgb = field.color(coords, None, field.raw_density(coords)[1])
    assert psnr(rgb, target) > 28.0


def test_demo_triplane_preset_builds():
    cfg = load_preset("demo-triplane")
    assert cfg.field.name == "triplane"
    field = build_field(cfg.field.name, cfg.field.options)
    assert field.num_parameters > 0
