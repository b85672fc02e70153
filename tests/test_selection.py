"""Example selection (INT, error maps): the one mechanism behind scene, 2D and distillation batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralfields.errors import NeuralFieldsError
from neuralfields.selection import ErrorMap, IndexDraw, Selection, SelectionConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def test_share_falls_from_start_to_end_and_uniform_chooses_nothing():
    s = Selection("int", SelectionConfig(start=0.8, end=0.2))
    assert s.share(0.0) == pytest.approx(0.8) and s.share(0.5) == pytest.approx(0.5) and s.share(1.0) == pytest.approx(0.2)
    assert s.chosen_count(100, 0.0) == 80 and s.chosen_count(100, 1.0) == 20
    assert s.pool_size(80) == 320
    assert Selection("uniform").chosen_count(100, 0.0) == 0
    with pytest.raises(NeuralFieldsError, match="unknown example selection 'best'; available: uniform, int, errormap"):
        Selection("best")
    with pytest.raises(NeuralFieldsError, match=r"train.select.start: expected a fraction"):
        SelectionConfig(start=2.0).validate("train.select")


def test_int_takes_the_largest_errors_and_errormap_draws_in_proportion():
    scores = torch.tensor([0.1, 0.9, 0.0, 0.5, 0.7])
    assert sorted(Selection("int").choose(scores, 2).tolist()) == [1, 4]
    torch.manual_seed(0)
    counts = torch.zeros(5)
    for _ in range(2000):
        pick = Selection("errormap").choose(scores, 1)
        counts[pick] += 1
    share = counts / counts.sum()
    assert share[2] == 0 and torch.allclose(share, scores / scores.sum(), atol=0.03), share
    assert len(set(Selection("errormap").choose(scores, 4).tolist())) == 4  # without replacement


def test_error_map_starts_high_then_follows_the_batches():
    m = ErrorMap(4, decay=0.5)
    assert m.scores(torch.arange(4)).tolist() == [1.0, 1.0, 1.0, 1.0]  # unseen cells come first
    m.observe(torch.tensor([0, 0, 2]), torch.tensor([0.2, 0.4, 0.1]))
    assert m.scores(torch.arange(4)).tolist() == pytest.approx([0.3, 1.0, 0.1, 1.0])  # first visit: the mean
    m.observe(torch.tensor([0]), torch.tensor([0.1]))
    assert m.scores(torch.tensor([0])).item() == pytest.approx(0.2)  # then halfway towards each new error


def test_index_draw_concentrates_on_hard_examples_and_restores_its_map():
    torch.manual_seed(0)
    count, hard = 1000, torch.arange(100)  # 10% of the examples are hard
    draw = IndexDraw(count, Selection("int", SelectionConfig(start=0.8, end=0.2)))
    for _ in range(30):  # every example visited; hard ones keep a large error
        idx = draw.next(100, 0.0)
        draw.observe((idx < 100).float() * 0.5 + 0.01)
    early = draw.next(100, 0.0)
    late = draw.next(100, 1.0)
    early_hard, late_hard = (early < 100).sum().item(), (late < 100).sum().item()
    # Uniform draws would hold about 10 hard examples; INT fills its chosen share with them.
    assert early_hard >= 25 and early_hard > late_hard, (early_hard, late_hard)
    copy = IndexDraw(count, Selection("int"))
    copy.load_state_dict(draw.state_dict())
    assert torch.equal(copy.map.scores(hard), draw.map.scores(hard))
    with pytest.raises(NeuralFieldsError, match="error map of 1000 cells does not fit"):
        IndexDraw(10, Selection("int")).load_state_dict(draw.state_dict())


def detail_patch_image(size: int = 64) -> np.ndarray:
    """Flat grey with a high-frequency patch in one corner: the patch is what is hard to fit."""
    img = np.full((size, size, 1), 0.5, dtype=np.float32)
    rng = np.random.default_rng(0)
    img[: size // 4, : size // 4, 0] = rng.random((size // 4, size // 4))
    return img


@pytest.mark.parametrize("kind", ["int", "errormap"])
def test_2d_fit_learns_faster_with_selection(kind):
    from neuralfields.fit.image import FitConfig, fit_image

    image = detail_patch_image()
    options = {"n_levels": 6, "log2_table": 12, "max_res": 64}
    psnr = {}
    for selection in ("uniform", kind):
        cfg = FitConfig(steps=150, batch=256, lr=1e-2, selection=selection)
        psnr[selection] = fit_image(image, "ngp", options, cfg, progress=False).psnr
    assert psnr[kind] > psnr["uniform"] + 1.0, psnr


def test_2d_fit_with_selection_resumes_exactly(tmp_path):
    from neuralfields.fit.image import FitConfig, fit_image

    image = detail_patch_image(32)
    options = {"n_levels": 4, "log2_table": 10, "max_res": 32}
    cfg = FitConfig(steps=40, batch=128, lr=1e-2, checkpoint_every=20, selection="int")
    full = fit_image(image, "ngp", options, cfg, progress=False, out_dir=tmp_path / "fit")
    (tmp_path / "fit" / "checkpoints" / "step_000040.pt").unlink()
    resumed = fit_image(image, "ngp", options, cfg, progress=False, out_dir=tmp_path / "fit", resume=True)
    assert abs(resumed.psnr - full.psnr) < 1e-4, (resumed.psnr, full.psnr)  # the error map was restored too


def test_scene_training_keeps_an_error_map_and_checkpoints_it(demo_dir, tmp_path):
    from conftest import tiny_config

    from neuralfields.data import load_data
    from neuralfields.run.checkpoints import latest_checkpoint
    from neuralfields.train.scene import scene_trainer

    cfg = tiny_config(demo_dir, steps=40)
    cfg.train.selection = "int"
    cfg.train.select.cell = 8
    cfg.train.checkpoint_every = 0
    loop = scene_trainer(cfg, load_data(cfg.data, "train"), None, tmp_path / "run", progress=False)
    draw = loop.source.draw
    assert len(draw.map) == 24 * 6 * 6  # 24 images of 48x48 pixels in cells of 8x8
    loop.fit()
    seen = draw.map.seen
    assert seen.float().mean() > 0.9  # unseen cells score highest, so the first steps cover the images
    _, state = latest_checkpoint(tmp_path / "run")
    assert torch.equal(state["selection"]["values"], draw.map.values)
    # A run whose checkpoint has no map (older runs, or uniform ones) resumes with a fresh map.
    cfg.train.steps = 45
    state.pop("selection")
    resumed = scene_trainer(cfg, load_data(cfg.data, "train"), None, None, progress=False)
    resumed.load_state(tmp_path / "run" / "x.pt", state)
    assert not resumed.source.draw.map.seen.any() and resumed.step == 40
