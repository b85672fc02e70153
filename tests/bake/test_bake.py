"""Baked fields: the lattice interpolates exactly, bakes render like the live field for a fraction of
the samples, bake files are tied to their checkpoint, and render/eval/view use them."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from conftest import assert_one_line_error

from neuralfields.bake import BakeConfig, BlockLattice, bake_path, bake_run, baked_model, fast_model, read_bake
from neuralfields.bake.lattice import EMPTY_RAW, cell_groups, lattice_points
from neuralfields.errors import NeuralFieldsError

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = BakeConfig(resolution=64, visibility_rays=1 << 14)


def linear_lattice(resolution: int = 32, block: int = 8, kept=(0, 5, 37)) -> tuple[BlockLattice, torch.Tensor]:
    """A lattice whose density is ``1 + x + 2y - z`` and features ``(x, y, z)`` in blocks ``kept``."""
    nb = resolution // block
    ids = torch.tensor(kept)
    block_index = torch.full((nb**3,), -1, dtype=torch.int32)
    block_index[ids] = torch.arange(len(ids), dtype=torch.int32)
    points = lattice_points(ids, resolution, block)
    density = 1 + points[:, 0] + 2 * points[:, 1] - points[:, 2]
    cells = torch.zeros(len(ids) * block**3, dtype=torch.bool)
    cells[::3] = True
    groups = cell_groups(cells, block_index, resolution, block, 4)
    return BlockLattice(resolution, block, block_index, density, points, cells, 4, groups), ids


def test_lattice_lookup_is_trilinear_inside_kept_blocks_and_empty_outside():
    lattice, ids = linear_lattice()
    nb = lattice.blocks
    # Random points inside each kept block: trilinear interpolation reproduces a linear function.
    origin = torch.stack([ids % nb, (ids // nb) % nb, ids // (nb * nb)], -1).float() * (2.0 / nb) - 1.0
    u = (origin[:, None] + torch.rand(len(ids), 200, 3) * (2.0 / nb) * 0.999).reshape(-1, 3)
    raw, feats = lattice.lookup(u)
    assert torch.allclose(raw, 1 + u[:, 0] + 2 * u[:, 1] - u[:, 2], atol=1e-5)
    assert torch.allclose(feats, u, atol=2e-3)  # features are stored in float16
    assert torch.equal(lattice.raw_density(u), raw)
    # Blocks not kept, and points outside the cube, are empty.
    outside = torch.tensor([[0.9, 0.9, 0.9], [1.5, 0.0, 0.0], [-0.2, 0.95, -0.7]])
    raw, feats = lattice.lookup(outside)
    assert torch.all(raw == EMPTY_RAW) and torch.all(feats == 0)


def test_cells_and_groups_mark_what_the_sampler_visits():
    lattice, _ = linear_lattice()
    space = type("Box", (), {"box_centre": torch.zeros(3), "box_half": torch.ones(3), "unbounded": False})()
    cell = 2.0 / lattice.resolution
    # Centres of every cell of the first kept block (block 0: cells 0..7 along each axis from -1).
    r = torch.arange(8).float()
    grid = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3).flip(-1)  # (x, y, z), x fastest
    centres = -1.0 + (grid + 0.5) * cell
    _, occupied = lattice.occupied_cells(centres, space)
    assert torch.equal(occupied, lattice.cells[:512])
    # Groups hold every occupied cell (grown by one group), and nothing far from kept blocks.
    assert lattice.occupied_groups(centres[occupied], space).all()
    assert not lattice.occupied_groups(torch.tensor([[0.9, 0.9, 0.9]]), space).any()


def test_baked_render_matches_the_live_field_without_querying_its_density(tiny_run):
    from neuralfields.bake import bake
    from neuralfields.data import load_data
    from neuralfields.data.scene import composite_background
    from neuralfields.scene_model import load_model
    from neuralfields.run.metrics import psnr

    model, state = load_model(tiny_run)
    cfg = BakeConfig(resolution=128, visibility_rays=1 << 15)
    baked = baked_model(model, bake(model, cfg), cfg)
    scene = load_data(model.cfg.data, "val")
    targets = [composite_background(scene.image(i), model.background) for i in range(len(scene))]
    live = sum(psnr(model.render_camera(scene.cameras, i)["rgb"], t) for i, t in enumerate(targets)) / len(targets)
    calls = []
    model.field.raw_density = lambda *a, **k: calls.append(1)  # the hash grid must not be read
    try:
        renders = [baked.render_camera(scene.cameras, i) for i in range(len(scene))]
    finally:
        del model.field.raw_density
    assert not calls
    score = sum(psnr(r["rgb"], t) for r, t in zip(renders, targets)) / len(targets)
    assert score > live - 0.6, (live, score)  # this briefly trained field is foggy: the hardest case for a bake
    # Normals and depth come through the same shading path.
    out = baked.render_camera(scene.cameras, 0, outputs=("rgb", "depth", "normal"))
    assert torch.isfinite(out["normal"]).all() and torch.isfinite(out["depth"]).all()
    # The baked sampler answers the sampler interface: it may sample wherever it placed samples,
    # and not in most of the empty box.
    from neuralfields.render import RayBatch

    rays = RayBatch.from_pixels(scene.cameras, 0, torch.arange(0, 48 * 48, 7))
    samples, aux = baked.sampler.sample(rays, baked.density)
    u = baked.space(samples.midpoints(rays.origins, rays.dirs))
    assert len(samples) > 100 and aux == {}
    assert baked.sampler.may_sample(u, torch.ones(len(u))).all()
    assert baked.sampler.may_sample(torch.rand(4096, 3) * 2 - 1, torch.ones(4096)).float().mean() < 0.5


def test_bake_file_is_tied_to_its_checkpoint(tiny_run, tmp_path):
    from neuralfields.scene_model import load_model

    model, state = load_model(tiny_run)
    baked, path, seconds = bake_run(model, state, tmp_path, SMALL)
    assert path == bake_path(tmp_path, state["step"]) and path.is_file()
    again, cfg = read_bake(path, state)
    assert torch.equal(again.lattice.block_index, baked.lattice.block_index) and cfg.resolution == 64
    assert torch.equal(again.lattice.features, baked.lattice.features) and again.sampler == baked.sampler
    # Other weights (a retrained or edited checkpoint): refused in one line naming the file.
    other = {**state, "field": {k: v + 1e-3 if v.is_floating_point() else v for k, v in state["field"].items()}}
    assert_one_line_error(lambda: read_bake(path, other), str(path), "other weights", error=NeuralFieldsError)
    path.with_name("junk.pt").write_bytes(b"not a bake")
    assert_one_line_error(lambda: read_bake(path.with_name("junk.pt"), state), "junk.pt", error=NeuralFieldsError)


def test_render_bakes_once_then_reuses_the_bake_and_refuses_a_foreign_one(tiny_run, tmp_path, capsys):
    import imageio.v2 as imageio

    from neuralfields.cli import main

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("baked", "eval", "export"))
    argv = ["render", str(run), "--seconds", "1", "--fps", "3", "--resolution", "32x32", "--no-progress"]
    assert main(argv + ["--out", str(tmp_path / "a.mp4")]) == 0
    out = capsys.readouterr().out
    files = list((run / "baked").glob("step_*.pt"))
    assert "baking step" in out and len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    assert main(argv + ["--out", str(tmp_path / "b.mp4")]) == 0
    out = capsys.readouterr().out
    assert "baking" not in out and files[0].stat().st_mtime_ns == stamp
    assert f"renderer: baked field {files[0]}\n" in out  # said before rendering, not only in the last line
    assert json.loads((tmp_path / "b.json").read_text())["renderer"].startswith("baked field")
    frames = imageio.mimread(str(tmp_path / "b.mp4"), memtest=False)
    assert len(frames) == 3 and frames[0].shape == (32, 32, 3) and frames[0].std() > 1
    assert main(argv + ["--exact", "--out", str(tmp_path / "c.mp4")]) == 0
    assert "renderer: live field (step" in capsys.readouterr().out
    assert json.loads((tmp_path / "c.json").read_text())["renderer"].startswith("live field")
    # A bake of other weights given with --baked: one line, exit 2.
    from neuralfields.scene_model import load_model

    model, state = load_model(run)
    with torch.no_grad():
        next(model.field.parameters()).add_(0.01)
    foreign = {**state, "field": model.field.state_dict()}
    _, other, _ = bake_run(model, foreign, tmp_path / "other", SMALL)
    assert main(argv + ["--baked", str(other), "--out", str(tmp_path / "d.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "other weights" in err and str(other) in err


def test_dynamic_runs_keep_the_live_field(tiny_run):
    from neuralfields.bake import bake
    from neuralfields.scene_model import load_model

    model, state = load_model(tiny_run)
    model.info.dynamic = True
    assert_one_line_error(lambda: bake(model, SMALL), "dynamic", error=NeuralFieldsError)
    same, how = fast_model(model, state, tiny_run, say=lambda _: None)
    assert same is model and "live field" in how


def test_bake_cli_writes_the_file_and_eval_scores_it(tiny_run, tmp_path, capsys):
    from neuralfields.cli import main

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("baked", "eval", "export"))
    assert main(["bake", str(run), "--resolution", "64", "--rays", "16384", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "blocks" in out and len(list((run / "baked").glob("step_*.pt"))) == 1
    assert main(["eval", str(run), "--baked", "--max-images", "2", "--no-progress"]) == 0
    baked = json.loads((run / "eval" / "val" / "metrics.json").read_text())
    assert baked["renderer"] == "baked" and baked["psnr"] > 15
    assert main(["bake", str(run), "--resolution", "60"]) == 2  # not a multiple of the block size


def test_a_proposal_network_baked_on_a_dense_grid_gives_its_density_at_the_grid_points():
    from neuralfields.bake.proposal import DenseDensity, bake_density, grid_points
    from neuralfields.render.samplers.proposal import ProposalDensity

    torch.manual_seed(0)
    net = ProposalDensity(max_res=16, levels=3, log2_table=12)
    with torch.no_grad():
        grid = DenseDensity(bake_density(net))
        assert grid.resolution == 17  # one point per hash-grid vertex of the finest level, corner to corner
        points = grid_points(17, torch.arange(17))
        assert torch.allclose(grid(points), net(points), rtol=1e-4)  # (x, y, z) order and corners line up
        # Between the points: a trilinear blend of raw density, so within the neighbours' range.
        u = torch.rand(1000, 3) * 2 - 1
        cell = torch.floor((u + 1) * 8) / 8 - 1
        corners = torch.stack([cell + torch.tensor([i & 1, (i >> 1) & 1, i >> 2]) / 8 for i in range(8)], 1)
        around = net(corners.reshape(-1, 3)).reshape(-1, 8)
        value = grid(u)
        assert (value >= around.amin(1) * (1 - 1e-4)).all() and (value <= around.amax(1) * (1 + 1e-4)).all()
        # A grid with more rows than float32 counts exactly (2^24; the fox's is 257^3) against
        # grid_sample, near the far corner where a float row index would be off.
        raw = torch.randn(257, 257, 257)
        u = torch.rand(20000, 3) * 0.19 + 0.8  # short of the edge, where the lookup clamps by 1e-3 of a cell
        ref = torch.nn.functional.grid_sample(raw[None, None], u.reshape(1, 1, 1, -1, 3), align_corners=True)
        assert torch.allclose(DenseDensity(raw)(u).log(), ref.reshape(-1), atol=1e-4)


@pytest.mark.parametrize("sampler", ["proposal", "occupancy"])
def test_a_contracted_run_bakes_with_its_own_sampler_and_renders_like_the_live_field(demo_dir, tmp_path, sampler):
    """Proposal runs keep their proposal sampler (networks on dense grids), occupancy runs march the
    lattice; either way the bake renders close to the live field without reading its hash grids."""
    from conftest import tiny_config

    from neuralfields.bake import bake
    from neuralfields.bake.proposal import DenseDensity
    from neuralfields.bake.sampler import BakedSampler
    from neuralfields.data import load_data
    from neuralfields.data.scene import composite_background
    from neuralfields.scene_model import load_model
    from neuralfields.run.metrics import psnr
    from neuralfields.train.scene import scene_trainer

    cfg = tiny_config(demo_dir, steps=150, options=dict(n_levels=8, n_features=2, log2_table=14, max_res=128,
                                                         appearance_dim=4))
    cfg.render.space, cfg.render.sampler = "contract", sampler
    cfg.render.proposal_samples, cfg.render.proposal_max_res, cfg.render.samples_per_ray = [32, 16], [32, 64], 12
    cfg.train.grid_update_every = 8
    cfg.output = str(tmp_path / "run")
    scene_trainer(cfg, load_data(cfg.data, "train"), None, run_dir=tmp_path / "run", progress=False).fit()
    model, state = load_model(tmp_path / "run")
    small = BakeConfig(resolution=128, visibility_rays=1 << 15)
    baked = bake(model, small)
    assert baked.sampler == sampler
    fast = baked_model(model, baked, small)
    if sampler == "proposal":
        assert all(isinstance(n, DenseDensity) for n in fast.sampler.networks)
        assert [n.resolution for n in fast.sampler.networks] == [32, 64]
    else:
        assert isinstance(fast.sampler, BakedSampler)
    scene = load_data(cfg.data, "val")
    targets = [composite_background(scene.image(i), model.background) for i in range(len(scene))]
    live = sum(psnr(model.render_camera(scene.cameras, i)["rgb"], t) for i, t in enumerate(targets)) / len(targets)
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in model.sampler.modules()
             if type(m).__name__ == "HashGrid"]
    model.field.raw_density = lambda *a, **k: calls.append(1)
    try:
        score = sum(psnr(fast.render_camera(scene.cameras, i)["rgb"], t) for i, t in enumerate(targets)) / len(targets)
    finally:
        del model.field.raw_density
        for h in hooks:
            h.remove()
    assert not calls  # neither the field's nor the proposal networks' hash grids were read
    assert score > live - 0.5, (live, score)


def test_fields_finer_than_a_feature_lattice_bake_density_only_and_colour_from_the_live_field(tiny_run):
    from neuralfields.bake import bake
    from neuralfields.data import load_data
    from neuralfields.data.scene import composite_background
    from neuralfields.fields.ngp import NGPConfig, NGPField
    from neuralfields.scene_model import load_model
    from neuralfields.run.metrics import psnr

    # The rule: a feature lattice up to 512 cells; finer fields keep density only, up to 1024 cells.
    coarse = BakeConfig().resolved(NGPField(NGPConfig(n_levels=4, log2_table=12, max_res=256)))
    fine = BakeConfig().resolved(NGPField(NGPConfig(n_levels=4, log2_table=12, max_res=1024)))
    assert (coarse.features, coarse.resolution) == ("lattice", 256) and (fine.features, fine.resolution) == ("live", 1024)

    model, state = load_model(tiny_run)
    cfg = BakeConfig(resolution=128, visibility_rays=1 << 15, features="live")
    baked = bake(model, cfg)
    assert baked.lattice.features.shape[1] == 0  # density only: a ninth of the bytes per point
    fast = baked_model(model, baked, cfg)
    scene = load_data(model.cfg.data, "val")
    targets = [composite_background(scene.image(i), model.background) for i in range(len(scene))]
    live = sum(psnr(model.render_camera(scene.cameras, i)["rgb"], t) for i, t in enumerate(targets)) / len(targets)
    queried, sampled = [], []
    source, sample = model.field.raw_density, fast.sampler.sample
    model.field.raw_density = lambda x, t=None: queried.append(len(x)) or source(x, t)
    fast.sampler.sample = lambda *a, **k: (lambda out: sampled.append(len(out[0])) or out)(sample(*a, **k))
    try:
        score = sum(psnr(fast.render_camera(scene.cameras, i)["rgb"], t) for i, t in enumerate(targets)) / len(targets)
    finally:
        del model.field.raw_density, fast.sampler.sample
    assert score > live - 0.6, (live, score)
    # The trained field is asked only for the coloured points: the heavy samples and one point per
    # ray for the light rest, fewer than the samples the lattice gives density to (55% on this
    # foggy field; the fox's gain is in docs/bench_bake.md).
    assert 0 < sum(queried) < 0.7 * sum(sampled), (sum(queried), sum(sampled))
