"""The field zoo (nerf, siren, wire, wire-complex, cam, mixed mlp assemblies): fitting, radiance
fields, initialisation statistics, CAM's identity at initialisation, checkpoint round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import tiny_config
from neuralfields.errors import NeuralFieldsError
from neuralfields.fields import FIELDS, build_field, resolved_options
from neuralfields.fields.coordinate_modulation import layer_norm
from neuralfields.fit.image import FitConfig, fit_image

pytestmark = pytest.mark.usefixtures("one_thread")

ZOO = ["nerf", "siren", "wire", "wire-complex", "cam"]


# Small networks that fit in a few seconds on a shared CPU; rates as the papers recommend.
IMAGE_SETUPS = {
    "mlp": ({"hidden": 32, "layers": 2}, 1e-2, 15.0),  # no encoding: the blurry baseline
    "nerf": ({"hidden": 48, "layers": 3, "skips": [], "encoding_options": {"n_frequencies": 5}}, 5e-3, 24.0),
    "siren": ({"hidden": 48, "layers": 3}, 1e-3, 26.0),
    "wire": ({"hidden": 48, "layers": 3}, 5e-3, 26.0),
    "wire-complex": ({"hidden": 48, "layers": 3}, 5e-3, 24.0),
    "cam": ({"base": "mlp", "base_options": {"hidden": 32, "layers": 2}, "resolution_2d": 16}, 1e-2, 24.0),
    "hashgrid+siren": ({"encoding": "hashgrid", "backbone": "siren", "hidden": 32, "layers": 2,
                        "encoding_options": {"n_levels": 4, "log2_table": 10, "max_res": 32}}, 1e-2, 26.0),
}


def pattern(size: int = 32) -> np.ndarray:
    """A colour test card ``[S, S, 3]``: smooth ramps, a hard-edged disk and stripes."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    disk = ((x - 0.4) ** 2 + (y - 0.55) ** 2 < 0.08).astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * (x + y))
    return np.stack([0.2 + 0.6 * x * (1 - disk) + 0.8 * disk, 0.3 + 0.5 * y, 0.4 * stripes + 0.3 * disk], -1).clip(0, 1)


def test_zoo_is_registered():
    assert set(ZOO + ["mlp"]) <= set(FIELDS)
    for name in ZOO:
        opts = resolved_options(name)
        assert "lr" in opts  # every zoo config recommends a learning rate


@pytest.mark.parametrize("name", list(IMAGE_SETUPS))
def test_overfits_small_image(name, monkeypatch):
    monkeypatch.setenv("NEURALFIELDS_COMPILE", "0")  # compiling the hash grid would cost more than the fit
    options, lr, bar = IMAGE_SETUPS[name]
    field = "mlp" if name == "hashgrid+siren" else name
    result = fit_image(pattern(), field, options, FitConfig(steps=250, lr=lr), progress=False)
    assert result.reconstruction.shape == (32, 32, 3)
    assert result.psnr > bar, f"{name}: {result.psnr:.2f} dB"


def test_every_field_beats_the_plain_mlp_and_cam_improves_it():
    img = pattern()
    cfg = FitConfig(steps=150, lr=1e-2)
    plain = fit_image(img, "mlp", {"hidden": 32, "layers": 2}, cfg, progress=False).psnr
    cam = fit_image(img, "cam", {"base": "mlp", "base_options": {"hidden": 32, "layers": 2}, "resolution_2d": 16}, cfg,
                    progress=False).psnr
    assert cam > plain + 3.0, (plain, cam)


def test_geo_features_and_parameter_counts():
    x = torch.rand(64, 3) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    for name in ZOO:
        f = build_field(name, {"hidden": 16, "layers": 2} if name != "cam" else {"base_options": {"hidden": 16, "layers": 2}})
        sigma, geo = f.density(x)
        assert sigma.shape == (64,) and (sigma >= 0).all()
        assert geo.shape == (64, f.geo_dim)
        rgb = f.color(x, d, geo)
        assert rgb.shape == (64, 3) and ((rgb >= 0) & (rgb <= 1)).all()
        assert f.num_parameters == sum(p.numel() for p in f.parameters()) > 0


# Small options for the fields whose defaults are large; any other registered field uses its defaults.
SMALL_OPTIONS = {
    "ngp": {"n_levels": 4, "log2_table": 10, "max_res": 32},
    "triplane": {"resolutions": [8], "hidden": 16},
    "kplanes": {"resolutions": [8], "hidden": 16, "time_modulation": True},
    "deform": {"resolutions": [8], "hidden": 16, "time_modulation": True,
               "canonical_options": {"n_levels": 4, "log2_table": 10, "max_res": 32}},
    "cam": {"base_options": {"hidden": 16, "layers": 2}},
    "wire-complex": {"hidden": 16, "layers": 2, "skips": [1]},
}


def small_field(name: str, in_dim: int):
    options = SMALL_OPTIONS.get(name, {"hidden": 16, "layers": 2} if name in ZOO + ["mlp"] else {})
    return build_field(name, options, in_dim=in_dim, view_dependent=in_dim == 3)


def dims(name: str) -> list[int]:
    return [3] if FIELDS[name].cls.time_dependent else [2, 3]


@pytest.mark.parametrize("name", list(FIELDS))
def test_fields_compute_on_the_device_of_their_inputs(name, monkeypatch):
    """Moved to the ``meta`` device, a field's queries, regulariser and backward pass must not meet
    a tensor made on the CPU (PyTorch refuses to mix them, as it refuses CPU and CUDA tensors)."""
    import neuralfields.encodings.hashgrid as hashgrid

    with pytest.raises(RuntimeError):  # the check can fail
        torch.empty(4, 3, device="meta") * torch.ones(4, 3)
    # The compiled hash-grid functions have no meta kernels; their eager versions are the same code.
    monkeypatch.setattr(hashgrid, "_corner_indices", hashgrid.corner_indices)
    monkeypatch.setattr(hashgrid, "_scatter_grad", hashgrid._scatter_grad_eager)
    for in_dim in dims(name):
        field = small_field(name, in_dim).to("meta")
        x = torch.empty(16, in_dim, device="meta")
        d = torch.empty(16, 3, device="meta") if in_dim == 3 else None
        t = torch.empty(16, 1, device="meta")
        sigma, geo = field.density(x, t)
        rgb = field.color(x, d, geo, t)
        loss = sigma.sum() + rgb.sum()
        reg = field.regularization()
        if reg is not None:
            loss = loss + reg
        loss.backward()
        assert rgb.device.type == "meta" and geo.shape == (16, field.geo_dim)
        assert all(p.grad is None or p.grad.device.type == "meta" for p in field.parameters())


@pytest.mark.parametrize("name", list(FIELDS))
def test_fields_follow_a_dtype_change(name):
    """``field.to(torch.float64)`` converts every constant (buffers, not plain attributes)."""
    torch.manual_seed(0)
    for in_dim in dims(name):
        field = small_field(name, in_dim)
        x = torch.rand(32, in_dim) * 2 - 1
        d = torch.nn.functional.normalize(torch.randn(32, 3), dim=-1) if in_dim == 3 else None
        t = torch.rand(32, 1)
        with torch.no_grad():
            sigma32, geo32 = field.density(x, t)
            rgb32 = field.color(x, d, geo32, t)
            field = field.to(torch.float64)
            x64, t64 = x.double(), t.double()
            d64 = None if d is None else d.double()
            sigma64, geo64 = field.density(x64, t64)
            rgb64 = field.color(x64, d64, geo64, t64)
        assert sigma64.dtype == geo64.dtype == rgb64.dtype == torch.float64
        assert all(b.dtype == torch.float64 for b in field.buffers() if b.is_floating_point())
        torch.testing.assert_close(rgb64.float(), rgb32, rtol=1e-3, atol=1e-4)
        torch.testing.assert_close(geo64.float(), geo32, rtol=1e-3, atol=1e-4)


def test_wire_complex_counts_complex_weights_twice():
    f = build_field("wire-complex", {"hidden": 32, "layers": 2, "backbone_options": {"lowpass_fraction": 0.0}}, in_dim=2,
                    view_dependent=False, out_dim=1)
    band = f.backbone.band_width
    assert band == round(32 / math.sqrt(2))
    hidden = f.backbone.band_hidden[0]
    assert hidden.weight.shape == (band, band, 2) and not hidden.weight.is_complex()


def test_siren_initialisation_statistics():
    """Sitzmann et al., Sec. 3.2: pre-activations ~ N(0, 1) in every hidden layer, so the sine
    outputs keep one U-shaped (arcsine-like) distribution whatever the depth.

    ``sin(u)`` for ``u ~ N(0, 1)`` has variance ``(1 - e^-2) / 2 ~= 0.432`` (an exact arcsine law,
    the limit for widely spread ``u``, has 1/2) and piles its mass at +-1.
    """
    torch.manual_seed(0)
    f = build_field("siren", {"hidden": 512, "layers": 6}, in_dim=2, view_dependent=False, out_dim=1)
    x = torch.rand(4096, 2) * 2 - 1
    with torch.no_grad():
        pre = f.backbone.preactivations(x)
    assert len(pre) == 6
    stats = []
    for u in pre[1:]:
        assert abs(float(u.mean())) < 0.1
        assert 0.85 < float(u.std()) < 1.15
        # A standard normal: ~68% within one standard deviation, light tails.
        assert 0.62 < float((u.abs() < 1).float().mean()) < 0.74
        assert float((u.abs() > 4).float().mean()) < 1e-3
        y = torch.sin(u)
        assert abs(float(y.var()) - (1 - math.exp(-2)) / 2) < 0.04
        ends, middle = float((y.abs() > 0.9).float().mean()), float((y.abs() < 0.1).float().mean())
        assert ends > 2 * middle  # U-shaped, not bell-shaped (uniform would give 1x)
        stats.append((float(u.std()), ends))
    # Stationary across depth: no layer drifts away from the others.
    stds, ends = zip(*stats)
    assert max(stds) - min(stds) < 0.15 and max(ends) - min(ends) < 0.05
    # The first layer spans several periods of the sine over [-1, 1] (omega_0 = 30).
    assert float(pre[0].std()) > 3.0


@pytest.mark.parametrize("base", ["mlp", "nerf", "siren", "wire", "wire-complex"])
@pytest.mark.parametrize("in_dim", [2, 3])
def test_cam_at_initialisation_equals_its_base(base, in_dim):
    small = {"hidden": 24, "layers": 3}
    view = in_dim == 3
    x = torch.rand(200, in_dim) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(200, 3), dim=-1) if view else None
    base_field = build_field(base, small, in_dim=in_dim, view_dependent=view)
    for norm in ("none", "layer"):
        cam = build_field("cam", {"base": base, "base_options": small, "norm": norm}, in_dim=in_dim, view_dependent=view)
        missing, unexpected = cam.load_state_dict(base_field.state_dict(), strict=False)
        assert not unexpected and all(k.startswith("modulation.") for k in missing)
        with torch.no_grad():
            sigma_c, geo_c = cam.density(x)
            rgb_c = cam.color(x, d, geo_c)
            if norm == "none":  # gamma = 1, beta = 0: exactly the base network
                sigma_b, geo_b = base_field.density(x)
            else:  # the base network with a plain layer norm before every activation
                geo_b = base_field.backbone(base_field.encoding(x), lambda i, u: layer_norm(u))
                sigma_b = base_field.density_activation(base_field.density_head(geo_b)[:, 0])
            rgb_b = base_field.color(x, d, geo_b)
        torch.testing.assert_close(geo_c, geo_b, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(sigma_c, sigma_b, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(rgb_c, rgb_b, rtol=1e-5, atol=1e-5)


def test_cam_modulation_is_trainable_and_gets_its_learning_rate():
    f = build_field("cam", {"base": "siren", "base_options": {"hidden": 16, "layers": 2}}, in_dim=3)
    groups = f.param_groups(1e-3, 1e-6)
    grid = [g for g in groups if any(p is f.modulation.gamma.planes[0] for p in g["params"])]
    assert len(grid) == 1 and grid[0]["lr"] == pytest.approx(1e-2) and grid[0]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(f.parameters()))
    # Both gamma and beta receive gradient (a product of zero-initialised planes would not).
    x = torch.rand(50, 3) * 2 - 1
    f.density(x)[1].square().sum().backward()
    assert f.modulation.gamma.planes[0].grad.abs().sum() > 0
    assert f.modulation.beta.planes[0].grad.abs().sum() > 0


def test_wire_complex_atoms_follow_the_signal():
    f = build_field("wire-complex", {"hidden": 32, "layers": 2}, in_dim=2, view_dependent=False, out_dim=1)
    points = torch.rand(500, 2) * 2 - 1
    importance = torch.zeros(500)
    importance[123] = 1.0  # a single "edge": every atom must pass through it
    f.init_from_signal(points, importance)
    first = f.backbone.band_first
    offsets = first.weight @ points[123] + first.bias
    assert offsets.abs().max() < 1e-5


def test_bad_options_are_one_line_errors():
    with pytest.raises(NeuralFieldsError, match="unknown backbone 'tanh'"):
        build_field("mlp", {"backbone": "tanh"})
    with pytest.raises(NeuralFieldsError, match="unknown encoding 'fourier'"):
        build_field("mlp", {"encoding": "fourier"})
    with pytest.raises(NeuralFieldsError, match="unknown key"):
        build_field("siren", {"backbone_options": {"omega": 3}})
    with pytest.raises(NeuralFieldsError, match="not an MLP-based field"):
        build_field("cam", {"base": "ngp"})
    with pytest.raises(NeuralFieldsError, match="norm"):
        build_field("cam", {"norm": "batch"})


# ------------------------------------------------------------------------------ radiance fields
SCENE_SETUPS = {
    "nerf": ({"hidden": 48, "layers": 3, "skips": [2], "encoding_options": {"n_frequencies": 6},
              "dir_encoding_options": {"n_frequencies": 2}, "color_hidden": 32}, 5e-3),
    "siren": ({"hidden": 48, "layers": 3, "color_hidden": 32, "backbone_options": {"first_omega": 10.0}}, 1e-3),
    "wire": ({"hidden": 48, "layers": 3, "color_hidden": 32, "backbone_options": {"omega": 5.0, "sigma": 2.0}}, 5e-3),
    "wire-complex": ({"hidden": 48, "layers": 3, "color_hidden": 32,
                      "backbone_options": {"omega": 5.0, "sigma": 2.0}}, 5e-3),
    "cam": ({"base": "nerf", "base_options": {"hidden": 48, "layers": 3, "skips": [], "color_hidden": 32,
                                               "encoding_options": {"n_frequencies": 6},
                                               "dir_encoding_options": {"n_frequencies": 2}},
             "resolution_3d": 16}, 5e-3),
}


def scene_config(demo_dir, name: str, steps: int):
    options, lr = SCENE_SETUPS[name]
    cfg = tiny_config(demo_dir, steps=steps, field=name, options=dict(options))
    cfg.train.lr = lr
    # Coarse marching keeps the pre-pruning density pass (most of a step's cost) small.
    cfg.render.samples_per_diagonal = 64
    cfg.render.grid_resolution = 24
    cfg.train.target_samples = 4096
    cfg.train.init_rays = 256
    cfg.train.max_rays = 512
    cfg.train.eval_images = 1
    return cfg


@pytest.fixture(scope="module")
def demo_splits(demo_dir):
    from neuralfields.data import load_data

    cfg = tiny_config(demo_dir)
    return load_data(cfg.data, "train"), load_data(cfg.data, "val")


@pytest.mark.parametrize("name", ZOO)
def test_learns_demo_scene(name, demo_dir, demo_splits):
    from neuralfields.scoring import score_model
    from neuralfields.train.scene import scene_trainer

    train, val = demo_splits
    cfg = scene_config(demo_dir, name, steps=160)
    trainer = scene_trainer(cfg, train, val, None, progress=False, log=lambda _: None)
    before = score_model(trainer.model, val, [0])["psnr"]
    summary = trainer.fit()
    assert summary["val_psnr"] > max(before + 5.0, 16.0), (before, summary["val_psnr"])


@pytest.mark.parametrize("name", ZOO)
def test_checkpoint_round_trip(name, demo_dir, demo_splits, tmp_path):
    from neuralfields.scene_model import load_model
    from neuralfields.train.scene import scene_trainer

    train, val = demo_splits
    cfg = scene_config(demo_dir, name, steps=5)
    run_dir = tmp_path / name
    cfg.output = str(run_dir)
    trainer = scene_trainer(cfg, train, val, run_dir, progress=False, log=lambda _: None)
    for _ in range(5):
        trainer.train_step()
    trainer.save()
    model, state = load_model(run_dir)
    assert state["step"] == 5
    expected = trainer.model.render_camera(val.cameras, 0)
    loaded = model.render_camera(val.cameras, 0)
    torch.testing.assert_close(loaded["rgb"], expected["rgb"], rtol=0, atol=1e-6)
    torch.testing.assert_close(loaded["depth"], expected["depth"], rtol=0, atol=1e-5)
    assert model.field.num_parameters == trainer.model.field.num_parameters
