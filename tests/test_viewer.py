"""The viewer through its HTTP API (gradio_client): load a run, render views and outputs, jump to a
training camera, render a video, export a mesh; bad requests come back as one-line messages."""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

pytest.importorskip("gradio", reason="viewer extra not installed: pip install 'neuralfields[viewer]'")
gradio_client = pytest.importorskip("gradio_client", reason="gradio_client not installed")

from conftest import viewer_server  # noqa: E402
from neuralfields.cli import main  # noqa: E402
from neuralfields.errors import NeuralFieldsError  # noqa: E402

MAX_SIDE = 64  # the test viewer's --max-resolution: small, so renders stay quick
PREVIEW = 16  # its preview side: views above 32 px render twice


@pytest.fixture(scope="module")
def served(tiny_run, tmp_path_factory):
    """The viewer over the folder holding ``tiny_run``, on a free localhost port, and a client."""
    from viewer import ViewerConfig

    out = tmp_path_factory.mktemp("viewer-out")
    # One torch thread: on a loaded 2-core machine it renders several times faster than two.
    config = ViewerConfig(max_resolution=MAX_SIDE, preview_side=PREVIEW, output_dir=str(out), threads=1)
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
    info, *_, status = client.predict(run, api_name="/load_run")
    for fact in ("`ngp`", "parameters", "training steps | 300", "training cameras | 24 at 48x48", "final loss"):
        assert fact in info
    assert "loaded" in status


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
    image, status, png, azimuth, elevation, distance, fov, _ = client.predict(run, 5, 48, "rgb",
                                                                               api_name="/render_camera")
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
    model3d, file, status = client.predict(run, "marching-cubes", 32, 0, api_name="/export_mesh")
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
