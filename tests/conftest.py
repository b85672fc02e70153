"""Shared fixtures: real data (skipped when absent) and tiny generated scenes and runs."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from neuralfields.config import RunConfig
from neuralfields.threads import torch_threads

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project; tests using it skip when it is absent."""
    root = Path(os.environ.get("NEURALFIELDS_DATA", SHARED_DATA))
    if not root.is_dir():
        pytest.skip(f"real datasets not found at {root} (set NEURALFIELDS_DATA to run these tests)")
    return root


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small demo scene (48x48, 24 train / 4 val / 4 test views) in NeRF-synthetic layout."""
    from neuralfields.data.demo import write_demo_scene

    return write_demo_scene(tmp_path_factory.mktemp("demo"), resolution=48, n_train=24, n_val=4, n_test=4)


def tiny_config(data_path: Path, steps: int = 300, field: str = "ngp", options: dict | None = None) -> RunConfig:
    """A fast config for tests: small hash grid, coarse occupancy grid, small batches."""
    cfg = RunConfig(scene="tiny")
    cfg.data.path = str(data_path)
    cfg.data.background = "random"
    cfg.field.name = field
    cfg.field.options = options if options is not None else (
        dict(n_levels=8, n_features=2, log2_table=14, max_res=256) if field == "ngp" else {})
    cfg.render.grid_resolution = 32
    cfg.render.samples_per_diagonal = 128
    cfg.train.steps = steps
    cfg.train.target_samples = 16384
    cfg.train.init_rays = 1024
    cfg.train.max_rays = 2048
    cfg.train.grid_warmup_steps = 64
    cfg.train.eval_every = 0
    cfg.train.checkpoint_every = 100
    cfg.train.eval_images = 2
    return cfg


def cli_args(demo_dir, out, steps, extra=()):
    """``neuralfields train`` arguments for ``tiny_config``'s settings (the train and distributed tests)."""
    cfg = tiny_config(demo_dir)
    sets = [f"field.options={json.dumps(cfg.field.options)}", f"render.grid_resolution={cfg.render.grid_resolution}",
            f"render.samples_per_diagonal={cfg.render.samples_per_diagonal}", f"train.target_samples={cfg.train.target_samples}",
            f"train.init_rays={cfg.train.init_rays}", f"train.max_rays={cfg.train.max_rays}",
            f"train.grid_warmup_steps={cfg.train.grid_warmup_steps}", "train.eval_every=0", "train.checkpoint_every=40"]
    args = ["train", "--data", str(demo_dir), "--steps", str(steps), "--output", str(out), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    return args + list(extra)


@pytest.fixture(scope="session")
def tiny_run(demo_dir, tmp_path_factory) -> Path:
    """A run folder trained briefly on the small demo scene (shared by eval/render/export/viewer tests)."""
    from neuralfields.data import load_data
    from neuralfields.train.scene import scene_trainer

    cfg = tiny_config(demo_dir, steps=300)
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    cfg.output = str(run_dir)
    scene_trainer(cfg, load_data(cfg.data, "train"), load_data(cfg.data, "val"), run_dir, progress=False).fit()
    # A small bake of the final checkpoint, so that render and the viewer (which bake on first
    # use) find one at once; tests/bake/test_bake.py bakes its own copies.
    from neuralfields.bake import BakeConfig, bake_run
    from neuralfields.scene_model import load_model

    model, state = load_model(run_dir)
    bake_run(model, state, run_dir, BakeConfig(resolution=64, visibility_rays=1 << 14))
    return run_dir


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks and renders are chains of small ops: one thread is faster on shared cores.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    with torch_threads(1):
        yield


def ngp_copy(demo_dir: Path, folder: Path, split: str = "test") -> Path:
    """The demo scene's ``split`` views as an instant-ngp folder (a ``transforms.json`` alone)."""
    meta = json.loads((demo_dir / f"transforms_{split}.json").read_text())
    folder.mkdir(parents=True)
    for i, frame in enumerate(meta["frames"]):
        src = demo_dir / f"{frame['file_path']}.png"
        shutil.copy(src, folder / f"{i:03d}.png")
        frame["file_path"] = f"{i:03d}.png"
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder


def assert_one_line_error(fn, *needles, error: type | None = None):
    """``fn()`` raises a one-line ``error`` (default :class:`NeuralFieldsError`) containing every needle."""
    from neuralfields.errors import NeuralFieldsError

    with pytest.raises(error or NeuralFieldsError) as info:
        fn()
    text = str(info.value)
    assert "\n" not in text
    for needle in needles:
        assert needle in text, text


def config_only_copy(run: Path, dest: Path) -> Path:
    """A run folder holding ``run``'s config but no checkpoint (what a crashed first save leaves)."""
    dest.mkdir(parents=True)
    shutil.copy(run / "config.json", dest / "config.json")
    return dest


@contextmanager
def viewer_server(runs: Path, config, **options):
    """The viewer serving ``runs`` on a free localhost port: yields its URL.

    The viewer sets torch's thread count (``config.threads``); the previous count is restored.
    ``options`` go to :func:`viewer.launch` (``auth=(user, password)`` ...).
    """
    from viewer import launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with torch_threads(torch.get_num_threads()):
        demo, url = launch(runs, port=port, block=False, config=config, **options)
        try:
            yield url
        finally:
            demo.close()


# Forward-facing synthetic capture: the demo tabletop in front of a textured wall, seen by a grid of
# cameras that all look the same way (LLFF's situation), written in LLFF's layout.
FORWARD_GRID = (3, 4)  # camera rows x columns
FORWARD_SIZE = (64, 48)  # image width, height


def forward_intersect(origins, dirs):
    """The demo scene, and behind it a wall at ``y = 2.5`` with smooth colour stripes, so that every
    ray ends on something (photos have no empty background): ``hit``, ``t``, ``rgb`` per ray."""
    from neuralfields.data.demo import DemoScene

    out = DemoScene().intersect(origins, dirs)
    t_wall = (2.5 - origins[:, 1]) / dirs[:, 1]
    p = origins + t_wall[:, None] * dirs
    wall = torch.stack([0.5 + 0.4 * torch.sin(3 * p[:, 0]), 0.5 + 0.4 * torch.sin(2 * p[:, 2] + 1),
                        0.5 + 0.4 * torch.cos(2.5 * (p[:, 0] + p[:, 2]))], -1)
    hit = out["hit"]
    rgb = torch.where(hit[:, None], out["rgb"], wall)
    t = torch.where(hit, out["t"], t_wall)
    return {"hit": torch.ones_like(hit), "t": t, "rgb": rgb}


def write_forward_scene(folder: Path) -> Path:
    """An LLFF folder (``poses_bounds.npy``, ``images/``) of the forward-facing synthetic capture:
    12 cameras on a 0.8 x 0.6 grid 3 units in front of the table, every one looking along +y and a
    little down; near/far bounds from the traced depths (0.1 and 99.9 percentiles, as LLFF's)."""
    import numpy as np
    from PIL import Image

    from neuralfields.cameras import Cameras
    from neuralfields.data.demo import render_supersampled

    (folder / "images").mkdir(parents=True)
    w, h = FORWARD_SIZE
    focal = 0.5 * w / math.tan(math.radians(25))
    tilt = math.radians(8)  # looking slightly down at the table
    forward = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    right = np.array([1.0, 0.0, 0.0])
    up = np.cross(-forward, right)  # a right-handed camera frame: right x up = backwards
    rows = []
    rows_n, cols_n = FORWARD_GRID
    for i in range(rows_n * cols_n):
        r, c = divmod(i, cols_n)
        centre = np.array([-0.4 + 0.8 * c / (cols_n - 1), -3.0, 0.2 + 0.3 * r / (rows_n - 1)])
        c2w = np.stack([right, up, -forward, centre], 1)  # OpenGL: x right, y up, looking along -z
        cams = Cameras.create(torch.tensor(c2w, dtype=torch.float32), focal, focal, w / 2, h / 2, w, h)
        rgba = render_supersampled(forward_intersect, cams, 0, 2)
        Image.fromarray((rgba[..., :3].numpy() * 255).round().astype(np.uint8)).save(folder / "images" / f"{i:03d}.png")
        origins, dirs = cams.image_rays(0)
        t = forward_intersect(origins.reshape(-1, 3), dirs.reshape(-1, 3))["t"]
        depth = (t[:, None] * dirs.reshape(-1, 3)).double().numpy() @ forward  # along the optical axis
        near, far = np.percentile(depth, [0.1, 99.9])
        pose = np.concatenate([np.stack([-up, right, -forward, centre], 1), [[h], [w], [focal]]], 1)  # LLFF columns
        rows.append(np.concatenate([pose.reshape(-1), [near, far]]))
    np.save(folder / "poses_bounds.npy", np.stack(rows))
    return folder


@pytest.fixture(scope="session")
def forward_dir(tmp_path_factory) -> Path:
    """The forward-facing synthetic capture in LLFF's layout (see :func:`write_forward_scene`)."""
    return write_forward_scene(tmp_path_factory.mktemp("forward") / "tabletop")
