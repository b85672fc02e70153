"""The Gradio page: novel views, training cameras, videos and meshes of trained runs.

A thin layer over the library: cameras come from :mod:`neuralfields.camera_paths`
(``orbit_camera``, ``make_path``), pictures from :mod:`neuralfields.export.video` (``render_path``
colours depth, normals and opacity), meshes from :mod:`neuralfields.export.mesh`. Handlers check
the request, call those functions, time them and write the files the page shows; every error
reaches the page (and API clients) as a one-line message.

Every handler has an ``api_name`` (``/load_run``, ``/render``, ``/render_camera``, ``/render_video``,
``/export_mesh``, ``/list_runs``), so scripts can drive the viewer with ``gradio_client``.
"""

from __future__ import annotations

import os

# Offline by design: no usage analytics and no Hugging Face hub calls (read when gradio is imported).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

import functools  # noqa: E402
import importlib.util  # noqa: E402
import inspect  # noqa: E402
import logging  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterator  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from neuralfields.camera_paths import PATH_KINDS, CameraPath, PathSettings, make_path, orbit_camera  # noqa: E402
from neuralfields.errors import NeuralFieldsError  # noqa: E402
from neuralfields.export.mesh import MESHERS, MeshConfig, export_mesh, save_mesh  # noqa: E402
from neuralfields.export.video import VISUALIZERS, VisualStyle, render_path, render_video  # noqa: E402

from .runs import LoadedRun, OrbitPose, RunLibrary, describe_run, training_pose  # noqa: E402

log = logging.getLogger("neuralfields.viewer")

OUTPUT_CHOICES = [("rgb", "rgb"), ("depth", "depth"), ("normals", "normal"), ("opacity", "opacity")]
VIDEO_PATHS = ("orbit", "spiral")  # the CLI's generated paths that suit a quick look (see PATH_KINDS)
MESH_MODULES = ("skimage", "trimesh")  # the mesh extra: marching cubes and GLB writing
MIN_SIDE = 16
# Control ranges; distance is relative to the median training distance so the slider suits any scene.
ELEVATION_RANGE = (-89.0, 89.0)
DISTANCE_RANGE = (0.1, 4.0)
FOV_RANGE = (5.0, 150.0)
IMAGE_HEIGHT = 480  # display height in the page; small renders and previews are scaled up to it


@dataclass
class ViewerConfig:
    """Limits and defaults of one viewer; the CLI sets ``max_resolution``."""

    max_resolution: int = 1024  # longest image side in pixels (views and videos); larger requests are refused
    default_resolution: int = 256
    preview_side: int = 64  # first, coarse pass of every view; views up to twice this render in one pass
    max_video_frames: int = 240
    mesh_resolution: int = 128  # marching-cubes samples along the longest box side
    max_mesh_resolution: int = 384
    mesh_faces: int = 300_000  # meshes are simplified to about this many faces so the browser stays smooth
    cached_runs: int = 2  # loaded models kept in memory
    output_dir: str | None = None  # frames, videos and meshes for the page; None: a fresh temporary folder
    keep_files: int = 64  # older files in output_dir are deleted
    threads: int | None = None  # torch CPU threads for the server process; None keeps torch's default
    device: str = "cpu"  # where models render (the CLI resolves --device auto to a concrete device)

    def resolved(self) -> "ViewerConfig":
        """A copy whose ``output_dir`` exists (created in the temporary folder when unset)."""
        folder = self.output_dir or tempfile.mkdtemp(prefix="neuralfields-viewer-")
        Path(folder).mkdir(parents=True, exist_ok=True)
        return replace(self, output_dir=str(folder))


class OutputFiles:
    """Uniquely named files in one folder; the oldest beyond ``keep`` are removed as new ones come."""

    def __init__(self, folder: str | Path, keep: int):
        self.folder, self.keep = Path(folder), keep

    def new(self, stem: str, suffix: str) -> Path:
        files = sorted((p for p in self.folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - self.keep + 1)]:
            old.unlink(missing_ok=True)
        return self.folder / f"{stem}-{uuid.uuid4().hex[:10]}{suffix}"


# ------------------------------------------------------------------------------------ checks


def check_side(side, cfg: ViewerConfig, what: str = "resolution") -> int:
    try:
        value = float(side)
    except (TypeError, ValueError):
        raise NeuralFieldsError(f"{what}: expected a number of pixels, got {side!r}") from None
    if not np.isfinite(value) or value < MIN_SIDE:
        raise NeuralFieldsError(f"{what}: expected at least {MIN_SIDE} pixels, got {side}")
    if value > cfg.max_resolution:
        raise NeuralFieldsError(f"{what}: {int(value)} px exceeds this viewer's maximum of {cfg.max_resolution} px "
                                "(restart it with a larger --max-resolution)")
    return int(round(value))


def check_number(value, what: str, low: float, high: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NeuralFieldsError(f"{what}: expected a number, got {value!r}") from None
    if not low <= v <= high:
        raise NeuralFieldsError(f"{what}: expected a value in [{low:g}, {high:g}], got {value}")
    return v


def check_output(output) -> str:
    if output not in VISUALIZERS:
        raise NeuralFieldsError(f"unknown output '{output}'; choose from {', '.join(VISUALIZERS)}")
    return output


def view_time(run: LoadedRun, value) -> float | None:
    """Static fields ignore time; dynamic ones take the slider's value in [0, 1]."""
    if not run.dynamic:
        return None
    return check_number(0.0 if value is None else value, "time", 0.0, 1.0)


def fit_size(width: int, height: int, side: int) -> tuple[int, int]:
    """``(w, h)`` with the aspect of ``width x height`` and ``side`` pixels along the longer edge."""
    if width >= height:
        return side, max(1, round(side * height / width))
    return max(1, round(side * width / height)), side


# ------------------------------------------------------------------------------------ views


def orbit_view(run: LoadedRun, azimuth, elevation, distance, fov,
               time_value: float | None) -> Callable[[int], CameraPath]:
    """Size -> one-frame path of the orbit camera (controls checked once, before any rendering)."""
    azimuth = check_number(azimuth, "azimuth", -360.0, 360.0)
    elevation = check_number(elevation, "elevation", *ELEVATION_RANGE)
    distance = check_number(distance, "distance", *DISTANCE_RANGE)
    fov = check_number(fov, "field of view", *FOV_RANGE)
    cams = run.model.info.cameras
    times = None if time_value is None else torch.tensor([time_value])

    def at(side: int) -> CameraPath:
        w, h = fit_size(int(cams.width[0]), int(cams.height[0]), side)
        cam = orbit_camera(run.model.info, azimuth, elevation, distance * run.frame.radius, fov, w, h)
        return CameraPath(cam, 1.0, times, "orbit view")

    return at


def training_view(run: LoadedRun, index) -> tuple[Callable[[int], CameraPath], int, OrbitPose]:
    """Size -> one-frame path of training camera ``index`` (its pose and field of view exactly),
    the index, and the orbit controls that put the camera there."""
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise NeuralFieldsError(f"training camera: expected an index, got {index!r}") from None
    last = run.num_cameras - 1
    if i != index or not 0 <= i <= last:
        raise NeuralFieldsError(f"training camera: index must be an integer in [0, {last}], got {index}")
    cam = run.model.info.cameras[i]
    pose = training_pose(run, i)
    times = None if pose.time is None else torch.tensor([pose.time])

    def at(side: int) -> CameraPath:
        size = fit_size(int(cam.width[0]), int(cam.height[0]), side)
        return CameraPath(cam.resized(*size), 1.0, times, "training camera")

    return at, i, pose


def render_picture(run: LoadedRun, path: CameraPath, output: str, style: VisualStyle) -> np.ndarray:
    """``uint8 [H, W, 3]`` of the path's single frame, coloured by the export layer."""
    return next(iter(render_path(run.model, path, (output,), style=style, progress=False)))[output]


def refine(run: LoadedRun, view: Callable[[int], CameraPath], side: int, output: str, cfg: ViewerConfig,
           files: OutputFiles) -> Iterator[tuple[np.ndarray | str, str]]:
    """Yield a coarse picture first (large views only), then the full one saved as PNG, with timings."""
    style = VisualStyle()  # depth range estimated on the first pass and kept for the second
    note = ""
    if side > 2 * cfg.preview_side:
        start = time.perf_counter()
        path = view(cfg.preview_side)
        image = render_picture(run, path, output, style)
        seconds = time.perf_counter() - start
        note = f"; preview {path.width}x{path.height} in {seconds:.2f} s"
        yield image, f"preview {path.width}x{path.height} {output} in {seconds:.2f} s, refining to {side} px ..."
    start = time.perf_counter()
    path = view(side)
    image = render_picture(run, path, output, style)
    seconds = time.perf_counter() - start
    png = files.new("frame", ".png")
    Image.fromarray(image).save(png)
    depth = f", depth range {style.depth_range[0]:.3g}..{style.depth_range[1]:.3g}" if output == "depth" else ""
    yield str(png), f"{output} {path.width}x{path.height} in {seconds:.2f} s{note}{depth}"


# ------------------------------------------------------------------------------------ page


def _page_errors(fn):
    """Turn exceptions into one-line page messages (``gr.Error``); tracebacks go to the server log only."""

    def message(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        if isinstance(exc, NeuralFieldsError):
            return gr.Error(str(exc), print_exception=False)
        log.exception("viewer: %s failed", fn.__name__)
        first = (str(exc).strip().splitlines() or [""])[0]
        what = fn.__name__.replace("_", " ")
        return gr.Error(f"{what} failed: {type(exc).__name__}: {first}", print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args):
            try:
                yield from fn(*args)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                raise message(exc) from None
        return generator

    @functools.wraps(fn)
    def plain(*args):
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001
            raise message(exc) from None
    return plain


def build_app(root: str | Path, max_resolution: int | None = None, config: ViewerConfig | None = None) -> gr.Blocks:
    """The viewer page over the run folder ``root`` or the runs below it.

    Args:
        root: a run folder or a folder of runs (searched two levels deep); only these runs are offered.
        max_resolution: longest image side allowed (overrides ``config.max_resolution``).
        config: limits and defaults; see :class:`ViewerConfig`.

    Serving it yourself instead of with :func:`launch`: pass ``allowed_paths=[demo.viewer_config.output_dir]``
    when that folder lies outside the temporary folder, or gradio refuses to serve the files.
    """
    cfg = (config or ViewerConfig()).resolved()
    if max_resolution is not None:
        if max_resolution < MIN_SIDE:
            raise NeuralFieldsError(f"--max-resolution: expected at least {MIN_SIDE} pixels, got {max_resolution}")
        cfg = replace(cfg, max_resolution=int(max_resolution))
    library = RunLibrary(root, cfg.cached_runs, cfg.device)
    files = OutputFiles(cfg.output_dir, cfg.keep_files)
    names = library.names()
    default_side = min(cfg.default_resolution, cfg.max_resolution)
    render_group = dict(concurrency_id="render", concurrency_limit=1)  # one model, few cores: one job at a time

    # ---------------------------------------------------------------- handlers

    @_page_errors
    def list_runs():
        found = library.names(rescan=True)
        return gr.Dropdown(choices=found, value=found[0] if found else None)

    @_page_errors
    def load_run(name):
        start = time.perf_counter()
        run = library.get(name)
        frame, n = run.frame, run.num_cameras
        elevation = float(np.clip(np.degrees(np.median(frame.elevations)), *ELEVATION_RANGE))
        # A tiny first render pays torch.compile's one-off cost here rather than at the first slider move.
        render_picture(run, orbit_view(run, 0.0, elevation, 1.0, 40.0, view_time(run, 0.0))(MIN_SIDE), "rgb",
                       VisualStyle())
        status = (f"loaded {run.name} (step {run.state.get('step', '?')}) in {time.perf_counter() - start:.2f} s; "
                  "release a slider to render")
        return (describe_run(run), 0.0, round(elevation, 1), 1.0, round(float(np.clip(frame.fov, *FOV_RANGE)), 1),
                gr.Slider(value=0.0, visible=run.dynamic),
                gr.Number(value=0, label=f"training camera (0 to {n - 1})"), status)

    @_page_errors
    def render(name, azimuth, elevation, distance, fov, resolution, output, time_value):
        run = library.get(name)
        side = check_side(resolution, cfg)
        view = orbit_view(run, azimuth, elevation, distance, fov, view_time(run, time_value))
        for image, status in refine(run, view, side, check_output(output), cfg, files):
            yield image, status, (image if isinstance(image, str) else gr.skip())

    @_page_errors
    def render_camera(name, index, resolution, output):
        run = library.get(name)
        side = check_side(resolution, cfg)
        view, i, pose = training_view(run, index)
        skip = (gr.skip(),) * 5
        for image, status in refine(run, view, side, check_output(output), cfg, files):
            if not isinstance(image, str):
                yield (image, status, gr.skip()) + skip
                continue
            yield (image, f"training camera {i}: {status}", image,
                   round(pose.azimuth, 2), round(float(np.clip(pose.elevation, *ELEVATION_RANGE)), 2),
                   round(float(np.clip(pose.distance, *DISTANCE_RANGE)), 3),
                   round(float(np.clip(pose.fov, *FOV_RANGE)), 2),
                   gr.skip() if pose.time is None else round(pose.time, 4))

    @_page_errors
    def make_video(name, kind, seconds, fps, resolution, output):
        run = library.get(name)
        if kind not in PATH_KINDS:
            raise NeuralFieldsError(f"unknown camera path '{kind}'; choose from {', '.join(PATH_KINDS)}")
        side = check_side(resolution, cfg, "video resolution")
        seconds = check_number(seconds, "seconds", 0.1, 60.0)
        fps = check_number(fps, "frames per second", 1.0, 60.0)
        frames = int(round(seconds * fps))
        if frames > cfg.max_video_frames:
            raise NeuralFieldsError(f"{frames} frames exceed this viewer's limit of {cfg.max_video_frames}; "
                                    "shorten the video or lower the frame rate")
        cams = run.model.info.cameras
        w, h = fit_size(int(cams.width[0]), int(cams.height[0]), side)
        path = make_path(kind, run.model.info, PathSettings(seconds=seconds, fps=fps, width=w, height=h))
        out = files.new(f"{kind}", ".mp4")
        summary = render_video(run.model, path, out, (check_output(output),), progress=False)
        return str(out), (f"{kind}: {len(path)} frames of {path.width}x{path.height} {output} in "
                          f"{summary['render_seconds']:.1f} s ({summary['frames_per_second']:.2f} frames/s)")

    @_page_errors
    def export_glb(name, method, resolution, time_value):
        missing = [m for m in MESH_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            raise NeuralFieldsError(f"mesh export needs {', '.join(missing)}: pip install 'neuralfields[mesh]'")
        run = library.get(name)
        if method not in MESHERS:
            raise NeuralFieldsError(f"unknown mesh method '{method}'; choose from {', '.join(MESHERS)}")
        res = check_number(resolution, "mesh resolution", 8, cfg.max_mesh_resolution)
        start = time.perf_counter()
        mesh = export_mesh(run.model, MeshConfig(method=method, resolution=int(res), time=view_time(run, time_value),
                                                 simplify=cfg.mesh_faces))
        if len(mesh.faces) == 0:
            raise NeuralFieldsError("the mesh is empty: the field has no surface at this level (train longer?)")
        out = save_mesh(mesh, files.new("mesh", ".glb"), "glb")
        status = (f"{len(mesh.faces):,} faces, {len(mesh.vertices):,} vertices ({method}, resolution {int(res)}) "
                  f"in {time.perf_counter() - start:.1f} s")
        return str(out), str(out), status

    # ---------------------------------------------------------------- layout

    with gr.Blocks(title="neuralfields viewer", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown("## neuralfields viewer")
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                run_box = gr.Dropdown(names, value=names[0], label="run", allow_custom_value=True)
                refresh = gr.Button("Rescan runs", size="sm")
                info = gr.Markdown()
            with gr.Column(scale=3):
                with gr.Tab("View"):
                    with gr.Row():
                        with gr.Column(scale=3):
                            image = gr.Image(label="novel view", format="png", type="numpy", interactive=False,
                                             height=IMAGE_HEIGHT, buttons=["download", "fullscreen"],
                                             elem_id="view-image")
                            status = gr.Markdown(elem_id="view-status")
                        with gr.Column(scale=2, min_width=240):
                            azimuth = gr.Slider(-180, 180, 0, step=1, label="azimuth (degrees)", elem_id="azimuth")
                            elevation = gr.Slider(*ELEVATION_RANGE, value=20, step=0.5, label="elevation (degrees)",
                                                  elem_id="elevation")
                            distance = gr.Slider(*DISTANCE_RANGE, value=1.0, step=0.01,
                                                 label="distance (x training distance)", elem_id="distance")
                            fov = gr.Slider(*FOV_RANGE, value=40, step=0.5, label="field of view (degrees)")
                            resolution = gr.Slider(MIN_SIDE, cfg.max_resolution, default_side, step=8,
                                                   label=f"resolution (longest side, at most {cfg.max_resolution} px)")
                            output = gr.Dropdown(OUTPUT_CHOICES, value="rgb", label="output")
                            time_slider = gr.Slider(0, 1, 0, step=0.01, label="time", visible=False)
                            with gr.Row():
                                camera = gr.Number(0, precision=0, minimum=0, label="training camera")
                                to_camera = gr.Button("Go to training camera")
                            download = gr.DownloadButton("Download PNG", value=None)
                with gr.Tab("Video"):
                    with gr.Row():
                        video_kind = gr.Radio(list(VIDEO_PATHS), value="orbit", label="camera path")
                        video_seconds = gr.Slider(1, 10, 2, step=0.5, label="seconds")
                        video_fps = gr.Slider(4, 30, 12, step=1, label="frames per second")
                    with gr.Row():
                        video_res = gr.Slider(MIN_SIDE, cfg.max_resolution, min(128, cfg.max_resolution), step=8,
                                              label="resolution (longest side)")
                        video_output = gr.Dropdown(OUTPUT_CHOICES, value="rgb", label="output")
                        video_go = gr.Button("Render video", variant="primary")
                    video = gr.Video(label="video", autoplay=True, loop=True, interactive=False, height=IMAGE_HEIGHT)
                    video_status = gr.Markdown()
                with gr.Tab("Mesh"):
                    with gr.Row():
                        mesh_method = gr.Radio(list(MESHERS), value=MeshConfig.method, label="method")
                        mesh_res = gr.Slider(32, cfg.max_mesh_resolution,
                                             min(cfg.mesh_resolution, cfg.max_mesh_resolution), step=16,
                                             label="resolution (samples along the longest side)")
                        mesh_go = gr.Button("Export GLB", variant="primary")
                    model3d = gr.Model3D(label="mesh (drag to rotate, scroll to zoom)", interactive=False,
                                         height=IMAGE_HEIGHT)
                    mesh_file = gr.File(label="GLB file", interactive=False)
                    mesh_status = gr.Markdown()

        view_inputs = [run_box, azimuth, elevation, distance, fov, resolution, output, time_slider]
        view_outputs = [image, status, download]
        load_outputs = [info, azimuth, elevation, distance, fov, time_slider, camera, status]

        refresh.click(list_runs, None, run_box, api_name="list_runs")
        # Sliders render on release, not while dragging: a CPU render takes longer than a drag step.
        gr.on([azimuth.release, elevation.release, distance.release, fov.release, resolution.release,
               time_slider.release, output.input], render, view_inputs, view_outputs, api_name="render",
              trigger_mode="always_last", **render_group)
        to_camera.click(render_camera, [run_box, camera, resolution, output],
                        view_outputs + [azimuth, elevation, distance, fov, time_slider], api_name="render_camera",
                        **render_group)
        video_go.click(make_video, [run_box, video_kind, video_seconds, video_fps, video_res, video_output],
                       [video, video_status], api_name="render_video", **render_group)
        mesh_go.click(export_glb, [run_box, mesh_method, mesh_res, time_slider], [model3d, mesh_file, mesh_status],
                      api_name="export_mesh", **render_group)
        # Opening the page or picking a run loads it and renders the first view. Registered last:
        # gradio names even private events after their function, which would rename the public ones.
        demo.load(load_run, run_box, load_outputs, api_name="load_run", **render_group).success(
            render, view_inputs, view_outputs, api_visibility="private", **render_group)
        run_box.input(load_run, run_box, load_outputs, api_visibility="private", **render_group).success(
            render, view_inputs, view_outputs, api_visibility="private", **render_group)
    demo.viewer_config = cfg  # launch() needs the resolved output folder
    return demo


def launch(root: str | Path, host: str = "127.0.0.1", port: int | None = 7860, max_resolution: int | None = None,
           config: ViewerConfig | None = None, block: bool = True) -> tuple[gr.Blocks, str]:
    """Build and serve the viewer over plain HTTP; prints its URL.

    Args:
        root: a run folder or a folder of runs.
        host: interface to listen on; the default keeps it on this machine (reach it from elsewhere
            with ``ssh -L PORT:127.0.0.1:PORT host``).
        port: TCP port; None lets gradio pick a free one from 7860 up.
        block: wait until interrupted (the CLI); False returns at once with the server running
            (tests; stop it with ``demo.close()``).
    Returns:
        the Blocks and the URL.
    """
    demo = build_app(root, max_resolution, config)
    cfg: ViewerConfig = demo.viewer_config
    if cfg.threads is not None:
        # Process-wide, hence here and not in build_app: on a busy machine one thread renders
        # several times faster than two fighting other processes for the cores.
        torch.set_num_threads(cfg.threads)
    demo.queue(default_concurrency_limit=1)
    try:
        _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                                share=False, ssr_mode=False, show_error=False, allowed_paths=[cfg.output_dir],
                                footer_links=["api"])
    except OSError as exc:
        if "empty port" in str(exc):  # gradio's wording for a port that is taken
            raise NeuralFieldsError(f"{host}:{port} is already in use; choose another --port") from None
        raise NeuralFieldsError(f"cannot listen on {host}:{port}: {str(exc).splitlines()[0]}") from None
    print(f"neuralfields viewer at {url} (runs under {Path(root)}); Ctrl+C stops it", flush=True)
    if block:
        demo.block_thread()
    return demo, url
