"""The viewer through its HTTP API (gradio_client): load a run, render views and outputs, navigate
with the mouse's endpoint, jump to a training camera, render a video, edit, save and render a
camera path, export a cropped mesh, show and make Gaussian splats, log in; bad requests and run names outside the
list come back as one-line messages."""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

import json  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

pytest.importorskip("gradio", reason="viewer extra not installed: pip install 'neuralfields[viewer]'")
gradio_client = pytest.importorskip("gradio_client", reason="gradio_client not installed")

from conftest import viewer_server  # noqa: E402
from neuralfields.cli import main  # noqa: E402
from neuralfields.errors import NeuralFieldsError  # noqa: E402

MAX_SIDE = 64  # the test viewer's --max-resolution: small, so renders stay quick
PREVIEW = 16  # its preview side: views above 32 px render twice
SPLAT_STEPS = 20  # "Make splats": a few steps are enough to check what is shown and written


@pytest.fixture(scope="module")
def served(tiny_run, tmp_path_factory):
    """The viewer over the folder holding ``tiny_run``, on a free localhost port, and a client."""
    from viewer import ViewerConfig

    out = tmp_path_factory.mktemp("viewer-out")
    # One torch thread: on a loaded 2-core machine it renders several times faster than two.
    config = ViewerConfig(max_resolution=MAX_SIDE, preview_side=PREVIEW, output_dir=str(out), threads=1,
                          splat_steps=SPLAT_STEPS)
    with viewer_server(tiny_run.parent, config) as url:
        yield gradio_client.Client(url, verbose=False), tiny_run.name


def picture(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def render(client, run, output="rgb", side=32, azimuth=30.0, elevation=20.0, distance=1.0, fov=40.0, t=0.0):
    """All images the /render generator yields (preview first when the view is large)."""
    job = client.submit(run, azimuth, elevation, distance, fov, side, output, t, api_name="/render")
    job.result()
    return job.outputs()


def app_error(client, *args, api_name: str) -> str:
    with pytest.raises(gradio_client.exceptions.AppError) as info:
        client.predict(*args, api_name=api_name)
    message = str(info.value)
    assert "Traceback" not in message and "\n" not in message.strip()
    return message


def test_load_run_shows_facts(served):
    client, run = served
    loaded = client.predict(run, api_name="/load_run")
    info, status = loaded[0], loaded[7]
    for fact in ("`ngp`", "parameters", "training steps | 300", "training cameras | 24 at 48x48", "final loss",
                 "checkpoint | step 300, saved"):
        assert fact in info
    assert "loaded" in status and "checkpoint step 300, saved" in status and " ago" in status


def test_render_previews_then_refines(served):
    client, run = served
    steps = render(client, run, side=MAX_SIDE)
    assert len(steps) == 2, "a view larger than twice the preview side renders twice"
    (preview, first_status, _), (final, status, png) = steps
    assert picture(preview).shape == (PREVIEW, PREVIEW, 3) and first_status.startswith("preview")
    assert picture(final).shape == (MAX_SIDE, MAX_SIDE, 3)
    assert " s" in status and status.startswith(f"rgb {MAX_SIDE}x{MAX_SIDE}")
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the download is a PNG
    # A small view skips the preview; another azimuth shows another picture.
    (a, _, _), = render(client, run, azimuth=0.0)
    (b, _, _), = render(client, run, azimuth=90.0)
    assert np.abs(picture(a).astype(int) - picture(b)).mean() > 1.0


def test_output_modes(served):
    client, run = served
    images = {o: picture(render(client, run, output=o)[-1][0]) for o in ("rgb", "depth", "normal", "opacity")}
    assert all(im.shape == (32, 32, 3) for im in images.values())
    for o in ("depth", "normal", "opacity"):
        assert np.abs(images[o].astype(int) - images["rgb"]).mean() > 2.0, o
    grey = images["opacity"]
    assert (grey[..., 0] == grey[..., 1]).all() and grey.max() > 128  # the object is opaque
    assert "depth range" in render(client, run, output="depth")[-1][1]


def test_training_camera_sets_the_controls(served, tiny_run):
    client, run = served
    loaded = client.predict(run, api_name="/load_run")[-1]
    image, status, png, azimuth, elevation, distance, fov, _, target, mark = client.predict(
        run, 5, 48, "rgb", api_name="/render_camera")
    assert target == "0,0,0" and mark > loaded > 0  # each handler that sets the view gives a new view mark
    assert status.startswith("training camera 5") and picture(image).shape == (48, 48, 3)
    # The demo scene's cameras look at its centre, so the orbit controls reproduce the view.
    orbit = render(client, run, side=48, azimuth=azimuth, elevation=elevation, distance=distance, fov=fov)[-1][0]
    assert np.abs(picture(orbit).astype(int) - picture(image)).mean() < 8.0


def test_video_plays_in_browser_format(served):
    client, run = served
    video, status = client.predict(run, "orbit", 1, 4, 32, "rgb", api_name="/render_video")
    path = Path(video["video"] if isinstance(video, dict) else video)
    assert path.suffix == ".mp4" and path.read_bytes()[4:8] == b"ftyp"
    assert status.startswith("orbit: 4 frames of 32x32")


def test_mesh_export_is_glb(served):
    client, run = served
    no_crop = (None,) * 6  # the crop inputs left empty: the scene box
    model3d, file, status = client.predict(run, "marching-cubes", 32, 0, *no_crop, api_name="/export_mesh")
    assert Path(model3d).read_bytes()[:4] == b"glTF"
    assert Path(file).read_bytes()[:4] == b"glTF" and "faces" in status


def test_bad_requests_come_back_as_messages(served):
    client, run = served
    assert "unknown run 'nope'" in app_error(client, "nope", api_name="/load_run")
    assert "unknown run '../etc'" in app_error(client, "../etc", 0, 20, 1, 40, 32, "rgb", 0, api_name="/render")
    assert "maximum" in app_error(client, run, 0, 20, 1, 40, MAX_SIDE * 2, "rgb", 0, api_name="/render")
    assert "rgb" in app_error(client, run, 0, 20, 1, 40, 32, "normals", 0, api_name="/render")  # lists the choices
    assert "index must be an integer in [0, 23]" in app_error(client, run, 24, 48, "rgb", api_name="/render_camera")
    assert "frames exceed" in app_error(client, run, "orbit", 10, 30, 32, "rgb", api_name="/render_video")


def test_refusals_are_one_line_in_the_server_terminal(served, capfd, monkeypatch):
    from viewer.runs import RunLibrary

    client, run = served
    capfd.readouterr()
    app_error(client, run, 0, 20, 1, 40, MAX_SIDE * 2, "rgb", 0, api_name="/render")  # gradio's own slider check
    app_error(client, run, "orbit", 10, 30, 32, "rgb", api_name="/render_video")  # the viewer's frame limit
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    refused = [line for line in err.splitlines() if "refused" in line]
    assert len(refused) == 2 and len(err.strip().splitlines()) == 2, err
    assert refused[0].startswith("viewer: render refused:") and f"maximum value {MAX_SIDE}" in refused[0]
    assert refused[1].startswith("viewer: make video refused: 300 frames exceed")
    # A crash is not a refusal: its traceback still reaches the terminal (and only a line the page).
    monkeypatch.setattr(RunLibrary, "get", lambda self, name: (_ for _ in ()).throw(RuntimeError("disk on fire")))
    assert "make video failed: RuntimeError: disk on fire" in app_error(client, run, "orbit", 1, 4, 32, "rgb",
                                                                       api_name="/render_video")
    err = capfd.readouterr().err
    assert "Traceback" in err and "viewer: make video failed" in err and "refused" not in err


def test_info_says_when_the_time_budget_ended_training(tiny_run, tmp_path):
    from neuralfields.camera_paths import estimate_scene_frame
    from neuralfields.scene_model import load_model
    from viewer.runs import LoadedRun, describe_run, duration_text

    model, state = load_model(tiny_run)
    model.cfg.train.steps, model.cfg.train.time_budget = 100_000, 600.0
    frame = estimate_scene_frame(model.info.cameras, model.info.aabb)
    run = LoadedRun("budget", tmp_path, model, dict(state, step=2082), frame, None, model, "live field")
    # No summary.json yet: still training, and either limit may end it.
    assert "| training steps | 2,082 of 100,000 (or its 10-minute time budget) |" in describe_run(run)
    # What the training loop writes when the budget stops it.
    (tmp_path / "summary.json").write_text(json.dumps({"steps": 2082, "train_seconds": 600.4, "final_loss": 0.01}))
    info = describe_run(run)
    assert "| training steps | 2,082 (ended on its 10-minute time budget) |" in info and "100,000" not in info
    # Every planned step done before the budget ran out: the plain count.
    model.cfg.train.steps = 2082
    assert "| training steps | 2,082 of 2,082 |" in describe_run(run)
    model.cfg.train.time_budget = None
    assert "| training steps | 2,082 of 2,082 |" in describe_run(run)
    assert [duration_text(s) for s in (600, 7200, 90, 12.5)] == ["10-minute", "2-hour", "90-second", "12.5-second"]


class RecordedProgress:
    """Stands in for ``gr.Progress``: records what a handler reports."""

    def __init__(self):
        self.calls: list[tuple] = []

    def __call__(self, progress=None, desc=None, total=None, unit="steps"):
        self.calls.append((progress, desc))


def page_handler(demo, api_name: str):
    return next(fn.fn for fn in demo.fns.values() if fn.api_name == api_name)


def test_loading_an_unbaked_run_shows_the_bake_and_its_size(tiny_run, tmp_path, caplog):
    import logging
    import re

    from neuralfields.bake import BakeConfig
    from neuralfields.threads import torch_threads
    from viewer import ViewerConfig, build_app

    run = tmp_path / "runs" / "fresh"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("baked", "eval"))
    config = ViewerConfig(max_resolution=MAX_SIDE, output_dir=str(tmp_path / "out"),
                          bake=BakeConfig(resolution=64, visibility_rays=1 << 14))
    load_run = page_handler(build_app(run.parent, config=config), "load_run")
    progress = RecordedProgress()
    with torch_threads(1), caplog.at_level(logging.INFO, logger="neuralfields.viewer"):
        status = load_run("fresh", progress=progress)[7]
        again = RecordedProgress()
        status_again = load_run("fresh", progress=again)[7]  # loaded already: nothing to bake
    descs = [desc for _, desc in progress.calls]
    folder = run / "baked"
    # The bar goes through the bake's own stages, in order, and names the bake's size and folder
    # once the blocks that show are known.
    stages = ["loading fresh", "baking: finding the blocks that show", "baking: filling the lattice (about",
              "baking: saving (about", "rendering a first small view"]
    firsts = [next(i for i, d in enumerate(descs) if d.startswith(stage)) for stage in stages]
    assert firsts == sorted(firsts), descs
    views = [p for p, d in progress.calls if d == stages[1]]
    assert views[0] == (1, 24) and views[-1] == (24, 24)
    filling = descs[firsts[2]]
    assert filling.endswith(f"MiB into {folder}/)"), filling
    estimate = float(re.search(r"about ([0-9.]+) MiB", filling).group(1))
    size = (folder / "step_000300.pt").stat().st_size / 2**20
    assert size / 1.5 < estimate < size * 1.5, (estimate, size)
    assert "baked now:" in status and f"MiB in {folder}/" in status
    # The terminal says it too, before the lattice is filled.
    said = [r.getMessage() for r in caplog.records if r.name == "neuralfields.viewer"]
    sized = next(i for i, m in enumerate(said) if m.startswith("baking about ") and f"MiB into {folder}/" in m)
    assert sized < next(i for i, m in enumerate(said) if m.startswith("baked in")), said
    assert not any("baking" in desc for _, desc in again.calls) and "baked now" not in status_again


def test_library_checks_and_run_discovery(tmp_path, tiny_run):
    from viewer import find_runs
    from viewer.app import ViewerConfig, check_side

    assert check_side(64, ViewerConfig()) == 64
    with pytest.raises(NeuralFieldsError, match="maximum of 1024 px"):
        check_side(2048, ViewerConfig())
    (tmp_path / "group" / "a").mkdir(parents=True)
    (tmp_path / "group" / "a" / "config.json").write_text("{}")
    (tmp_path / "b" / "eval").mkdir(parents=True)
    (tmp_path / "b" / "config.json").write_text("{}")
    (tmp_path / "b" / "eval" / "config.json").write_text("{}")  # inside a run: not a run of its own
    (tmp_path / "empty").mkdir()
    assert find_runs(tmp_path) == {"b": tmp_path / "b", "group/a": tmp_path / "group" / "a"}
    assert list(find_runs(tiny_run)) == [tiny_run.name]
    with pytest.raises(NeuralFieldsError, match="does not exist"):
        find_runs(tmp_path / "missing")


@pytest.mark.parametrize("args, expected", [
    (["missing-folder"], "folder does not exist"),
    (["EMPTY"], "no run folders"),
    (["RUN", "--port", "0"], "--port: expected a value [1, 65535]"),
    (["RUN", "--max-resolution", "big"], "--max-resolution: expected an integer"),
])
def test_cli_bad_input(tmp_path, tiny_run, capsys, args, expected):
    args = [{"EMPTY": str(tmp_path), "RUN": str(tiny_run)}.get(a, a) for a in args]
    if args[0] == "missing-folder":
        args[0] = str(tmp_path / "missing-folder")
    assert main(["view"] + args) == 2
    assert expected in capsys.readouterr().err


# ------------------------------------------------------------------------------------ mouse navigation


def navigate(client, run, seq, quality="full", azimuth=30.0, target="0,0,0", side=MAX_SIDE, distance=1.0):
    return client.predict(run, azimuth, 20.0, distance, 40.0, side, "rgb", 0.0, target, quality, seq,
                          api_name="/navigate")


def test_navigate_previews_pans_and_drops_stale_requests(served):
    client, run = served
    image, status, _, azimuth, elevation, distance, target = navigate(client, run, 1, "preview", azimuth=390 - 360)
    assert picture(image).shape == (PREVIEW, PREVIEW, 3) and status.startswith("moving:")
    assert (azimuth, elevation, distance, target) == (30.0, 20.0, 1.0, "0,0,0")  # the sliders follow the mouse
    centred, status, png, *_ = navigate(client, run, 2)
    assert picture(centred).shape == (MAX_SIDE, MAX_SIDE, 3) and Path(png).is_file() and "checkpoint step" in status
    panned, *_, target = navigate(client, run, 3, target="0.15,0,0.05")
    assert target == "0.15,0,0.05" and np.abs(picture(panned).astype(int) - picture(centred)).mean() > 1.0
    # A request numbered below one already handled for this session renders nothing.
    start = time.perf_counter()
    stale = navigate(client, run, 2)
    assert time.perf_counter() - start < 2.0
    assert all(not isinstance(v, str) for v in stale), stale
    assert "target" in app_error(client, run, 0, 20, 1, 40, 32, "rgb", 0, "1,2", "full", 9, api_name="/navigate")
    assert "quality" in app_error(client, run, 0, 20, 1, 40, 32, "rgb", 0, "0,0,0", "fast", 10, api_name="/navigate")


def test_view_pose_is_the_orbit_camera_when_not_panned(tiny_run):
    from neuralfields.camera_paths import estimate_scene_frame, orbit_camera
    from neuralfields.scene_model import load_model
    from viewer.navigation import OrbitView, view_pose

    info = load_model(tiny_run)[0].info
    frame = estimate_scene_frame(info.cameras, info.aabb)
    view = OrbitView(35.0, 25.0, 1.3, 40.0)
    expected = orbit_camera(info, 35.0, 25.0, 1.3 * frame.radius, 40.0, 32, 32).c2w[0].double().numpy()
    assert np.allclose(view_pose(frame, view), expected, atol=1e-5)
    # Panning moves camera and target together: same orientation, eye shifted by the offset.
    panned = view_pose(frame, OrbitView(35.0, 25.0, 1.3, 40.0, (0.0, 0.0, 0.2)))
    assert np.allclose(panned[:, :3], expected[:, :3], atol=1e-5)
    assert np.allclose(panned[:, 3] - expected[:, 3], 0.2 * frame.radius * frame.up, atol=1e-5)


# ------------------------------------------------------------------------------------ camera paths


def video_frames(path) -> int:
    import imageio.v3 as iio

    return sum(1 for _ in iio.imiter(str(path)))


def decoded(path) -> list[np.ndarray]:
    import imageio.v3 as iio

    return list(iio.imiter(str(path)))


def test_camera_path_editor_saves_both_formats_and_renders(served, tiny_run, tmp_path, capsys):
    from neuralfields.camera_paths import load_path_file
    from neuralfields.scene_model import load_model

    client, run = served
    client.predict(run, api_name="/load_run")  # a fresh run clears the keyframes
    for azimuth in (0, 120, 60):
        _, index, status = client.predict(run, azimuth, 20, 1.0, 40, "0,0,0", 0, api_name="/add_keyframe")
    assert index == 2 and status == "3 keyframes"
    table, index = client.predict(2, api_name="/move_keyframe_up")
    assert index == 1 and [row[1] for row in table["data"]] == [0.0, 60.0, 120.0]
    table, _ = client.predict(2, api_name="/delete_keyframe")
    assert [row[1] for row in table["data"]] == [0.0, 60.0]
    assert "index must be an integer in [0, 1]" in app_error(client, 5, api_name="/move_keyframe_down")

    files, command, _ = client.predict(run, 1, 5, 32, False, "rgb", api_name="/save_path")
    ours, nerfstudio = (Path(f) for f in files)
    info = load_model(tiny_run)[0].info
    a, b = load_path_file(ours, info), load_path_file(nerfstudio, info)  # the reader `render --path` uses
    assert len(a) == len(b) == 5 and (a.width, a.height) == (b.width, b.height) == (32, 32)
    assert torch.allclose(a.cameras.c2w, b.cameras.c2w, atol=1e-5)
    assert command.startswith(f"neuralfields render {tiny_run} --path {ours.name} --out path.mp4")
    assert command.endswith("--threads 1")  # the viewer's own thread count (the fixture's config)

    job = client.submit(run, 1, 5, 32, False, "rgb", api_name="/render_path")
    video, files, command, status = job.result()
    path = Path(video["video"] if isinstance(video, dict) else video)
    assert video_frames(path) == 5 and status.startswith("5 frames of 32x32")
    # The command shown renders the same path from the saved file.
    out = tmp_path / "cli.mp4"
    argv = command.split()[1:]
    argv[argv.index("--path") + 1] = str(Path(files[0]))
    argv[argv.index("--out") + 1] = str(out)
    assert main(argv + ["--no-progress"]) == 0 and video_frames(out) == 5
    assert "renderer: baked field" in capsys.readouterr().out  # the run's bake, as the viewer renders with
    viewer_frames, cli_frames = decoded(path), decoded(out)
    assert all(np.array_equal(a, b) for a, b in zip(viewer_frames, cli_frames))  # the very same frames
    preview, *_ = client.predict(run, 1, 5, 32, False, "rgb", api_name="/preview_path")
    assert video_frames(Path(preview["video"] if isinstance(preview, dict) else preview)) == 5
    client.predict(run, api_name="/load_run")
    assert "at least 2 keyframes" in app_error(client, run, 1, 5, 32, False, "rgb", api_name="/save_path")


# ------------------------------------------------------------------------------------ 3D: crop; splats


def test_crop_box_cuts_the_mesh(served, tiny_run):
    import trimesh

    from neuralfields.export.mesh import Z_UP_TO_Y_UP

    client, run = served
    loaded = client.predict(run, api_name="/load_run")
    assert list(loaded[9:15]) == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]  # the crop inputs start as the scene box
    crop = [-0.3, -0.3, -0.2, 0.3, 0.25, 0.3]
    glb, _, status = client.predict(run, "marching-cubes", 32, 0, *crop, api_name="/export_mesh")
    mesh = trimesh.load(glb, force="mesh")
    mesh.apply_transform(np.linalg.inv(Z_UP_TO_Y_UP))  # GLB is y-up; back to the scene's axes
    lo, hi = mesh.bounds
    assert (lo >= np.array(crop[:3]) - 1e-4).all() and (hi <= np.array(crop[3:]) + 1e-4).all(), mesh.bounds
    assert "bounds" in status

    bad_crop = [1, 0, 0, 0, 1, 1]
    assert "each max must exceed" in app_error(client, run, "marching-cubes", 32, 0, *bad_crop, api_name="/export_mesh")


def files_below(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*") if p.is_file()}


def test_splats_tab_makes_splats_without_touching_the_run(served, tiny_run):
    from neuralfields.splats.io import read_ply

    client, run = served
    ply, file, status = client.predict(run, api_name="/splats")
    assert ply is None and file is None and "no distilled splats yet" in status and f"{SPLAT_STEPS} steps" in status
    before = files_below(tiny_run)
    ply, file, status = client.predict(run, api_name="/make_splats")
    assert files_below(tiny_run) == before  # nothing is written into the run folder
    scene = read_ply(ply)
    assert len(scene) > 1000 and Path(file).read_bytes() == Path(ply).read_bytes()
    assert "Gaussians" in status and f"made here from {run} ({SPLAT_STEPS} steps at 48 px" in status
    # In the splat-viewer frame: the scene centre at the origin, the training cameras 5 units away.
    means = scene.means.detach()
    assert float(means.norm(dim=-1).quantile(0.99)) < 5.0 and float(means.mean(0).norm()) < 1.0
    again, _, status_again = client.predict(run, api_name="/splats")
    assert again is not None and Path(again).read_bytes() == Path(ply).read_bytes() and status_again == status
    assert "unknown run" in app_error(client, "../elsewhere", api_name="/make_splats")


def test_splats_tab_shows_the_runs_own_splats(tiny_run, tmp_path):
    """A run with ``RUN/splats/`` (``distill --student gaussians``) shows those, exported in the viewer frame."""
    from neuralfields.export.splat import scene_transform
    from neuralfields.splats.io import read_ply
    from neuralfields.splats.model import load_splats
    from neuralfields.splats.transform import transform_scene
    from viewer.core import OutputFiles, Viewer, ViewerConfig
    from viewer.runs import RunLibrary
    from viewer.splats import SplatShelf

    run_dir = tmp_path / "runs" / "tiny"
    shutil.copytree(tiny_run, run_dir)
    assert main(["distill", str(run_dir), "--student", "gaussians", "--steps", "10", "--no-progress",
                 "--set", "splats.resolution=24", "--set", "splats.init_views=4"]) == 0
    cfg = ViewerConfig(output_dir=str(tmp_path / "out")).resolved()
    viewer = Viewer(cfg, RunLibrary(run_dir.parent), OutputFiles(cfg.output_dir, cfg.keep_files))
    shelf, run = SplatShelf(viewer), viewer.library.get("tiny")
    shown = shelf.show(run)
    model, state = load_splats(run_dir)
    expected = transform_scene(model.scene, scene_transform(model.info))
    assert torch.allclose(read_ply(shown.path).means, expected.means, atol=1e-5)
    assert shown.path.parent == Path(cfg.output_dir) and "distilled into tiny/splats/ (step 10)" in shown.status
    assert shelf.show(run).path == shown.path  # exported once per checkpoint
    assert not shelf.offers_making(run)
    with pytest.raises(NeuralFieldsError, match="already has distilled splats"):
        shelf.make(run, lambda *progress: None)


# ------------------------------------------------------------------------------------ sharing safely


def test_run_names_never_leave_the_list(served, tiny_run, tmp_path, monkeypatch):
    from viewer.runs import RunLibrary

    client, run = served
    opened = []
    original = RunLibrary._load
    monkeypatch.setattr(RunLibrary, "_load", lambda self, folder, *rest: opened.append(Path(folder))
                        or original(self, folder, *rest))
    sibling = tiny_run.parent.parent / "other"  # a real run folder just outside the served one
    shutil.copytree(tiny_run, sibling, dirs_exist_ok=True)
    try:
        for name in ("../other", "../../etc", "/etc/passwd", str(tiny_run), str(sibling), f"{run}/../../other"):
            for endpoint, args in (("/load_run", (name,)), ("/render", (name, 0, 20, 1, 40, 32, "rgb", 0))):
                message = app_error(client, *args, api_name=endpoint)
                assert f"unknown run '{name}'" in message, message
    finally:
        shutil.rmtree(sibling)
    assert all(p.resolve() == tiny_run.resolve() for p in opened), opened


# What the server answers at these routes must not name a run before login.
PUBLIC_ROUTES = ("/", "/?page=", "/config", "/info", "/gradio_api/info", "/gradio_api/info?all_endpoints=True",
                 "/gradio_api/openapi.json", "/openapi.json", "/gradio_api/runs", "/gradio_api/app_id",
                 "/gradio_api/startup-events", "/manifest.json", "/theme.css", "/gradio_api/login_check",
                 "/gradio_api/token", "/gradio_api/user", "/monitoring")


def http_get(opener, url: str) -> tuple[int, str]:
    try:
        with opener.open(url, timeout=30) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def test_login_guards_page_and_api(tiny_run, tmp_path):
    import http.cookiejar
    import urllib.parse

    from viewer import ViewerConfig

    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "quartz-owl-run").symlink_to(tiny_run, target_is_directory=True)  # a name no page has by chance
    config = ViewerConfig(max_resolution=MAX_SIDE, preview_side=PREVIEW, output_dir=str(tmp_path / "out"), threads=1)
    with viewer_server(runs, config, auth=("ann", "s3cret:x")) as url:
        base = url.rstrip("/")
        anonymous = urllib.request.build_opener()
        assert http_get(anonymous, f"{base}/config")[0] == 401
        status, page = http_get(anonymous, f"{base}/")
        assert status == 200 and '"auth_required":true' in page  # the login page
        for route in PUBLIC_ROUTES:
            status, body = http_get(anonymous, base + route)
            assert "quartz-owl" not in body, f"{route} ({status}) names a run before login"
        # After login the page and its config name it.
        jar = http.cookiejar.CookieJar()
        user = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = urllib.parse.urlencode({"username": "ann", "password": "s3cret:x"}).encode()
        assert user.open(f"{base}/login", data=form, timeout=30).status == 200
        for route in ("/", "/config", "/gradio_api/info"):
            status, body = http_get(user, base + route)
            assert status == 200 and "quartz-owl-run" in body, route
        with pytest.raises(Exception):
            gradio_client.Client(url, verbose=False, auth=("ann", "wrong"))
        client = gradio_client.Client(url, verbose=False, auth=("ann", "s3cret:x"))
        assert "quartz-owl-run" in str(client.predict(api_name="/list_runs"))


def test_views_are_not_held_back_by_a_long_render(served):
    """A second browser's view renders between the frames of another's long path render."""
    client, run = served
    other = gradio_client.Client(client.src, verbose=False)
    for azimuth in (0, 180):
        other.predict(run, azimuth, 20, 1.0, 40, "0,0,0", 0, api_name="/add_keyframe")
    # 160 frames: several seconds even for a baked field that renders a frame in tens of ms.
    job = other.submit(run, 16, 10, MAX_SIDE, False, "rgb", api_name="/render_path")
    time.sleep(1.0)
    start = time.perf_counter()
    render(client, run, side=32)
    waited = time.perf_counter() - start
    assert not job.done(), "the path render should still be running"
    assert waited < 10.0
    job.result()


@pytest.mark.parametrize("args, expected", [
    (["RUN", "--host", "0.0.0.0"], "--host 0.0.0.0 serves the page beyond this machine: add --auth"),
    (["RUN", "--auth", "nopassword"], "--auth: expected USER:PASSWORD"),
    (["RUN", "--auth", "a:b", "--no-auth"], "exclude each other"),
])
def test_cli_refuses_unsafe_sharing(tiny_run, capsys, args, expected):
    args = [str(tiny_run) if a == "RUN" else a for a in args]
    assert main(["view"] + args) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err


def test_exposure_rules_and_ages():
    from viewer import check_exposure
    from viewer.runs import age_text

    check_exposure("127.0.0.1", None, False)
    check_exposure("localhost", None, False)
    check_exposure("::1", None, False)
    check_exposure("0.0.0.0", ("a", "b"), False)
    check_exposure("0.0.0.0", None, True)
    with pytest.raises(NeuralFieldsError, match="--auth USER:PASSWORD"):
        check_exposure("192.168.1.5", None, False)
    assert [age_text(s) for s in (5, 130, 7200, 3 * 86400)] == ["5 s", "2 min", "2 h", "3 days"]
