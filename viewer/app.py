"""The Gradio page: novel views with mouse navigation, training cameras, videos, a camera-path
editor and browser-side 3D (mesh and splats) of trained runs.

A thin layer over the library: cameras come from :mod:`neuralfields.camera_paths` and
:mod:`.navigation` (orbit views with a pan target), pictures and videos from
:mod:`neuralfields.export.video`, geometry from :mod:`.geometry`, paths from :mod:`.paths`.
Handlers check the request, call those functions, time them and write the files the page shows;
every error reaches the page (and API clients) as a one-line message.

Every public handler has an ``api_name`` (``/load_run``, ``/render``, ``/navigate``,
``/render_camera``, ``/render_video``, ``/export_mesh``, ``/export_splats``, ``/add_keyframe``,
``/preview_path``, ``/save_path``, ``/render_path``, ``/list_runs`` ...), so scripts can drive the
viewer with ``gradio_client``.
"""

from __future__ import annotations

import os

# Offline by design: no usage analytics and no Hugging Face hub calls (read when gradio is imported).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

import ipaddress  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterator  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from neuralfields.camera_paths import PATH_KINDS, CameraPath, PathSettings, make_path  # noqa: E402
from neuralfields.errors import NeuralFieldsError  # noqa: E402
from neuralfields.export.mesh import MESHERS, MeshConfig  # noqa: E402
from neuralfields.export.video import VisualStyle, render_video  # noqa: E402

from . import geometry, paths  # noqa: E402
from .core import (MIN_SIDE, OutputFiles, Viewer, ViewerConfig, check_frames, check_output,  # noqa: E402
                   check_side, page_errors, render_picture, run_size, view_time)
from .navigation import (DISTANCE_RANGE, ELEVATION_RANGE, FOV_RANGE, QUALITIES, REQUEST_JS,  # noqa: E402
                         NewestRequests, OrbitView, format_target, page_script, view_camera)
from .runs import LoadedRun, RunLibrary, checkpoint_note, describe_run, training_pose  # noqa: E402

__all__ = ["ViewerConfig", "build_app", "launch", "check_exposure"]

OUTPUT_CHOICES = [("rgb", "rgb"), ("depth", "depth"), ("normals", "normal"), ("opacity", "opacity")]
VIDEO_PATHS = ("orbit", "spiral")  # the CLI's generated paths that suit a quick look (see PATH_KINDS)
IMAGE_HEIGHT = 480  # display height in the page; small renders and previews are scaled up to it
CROP_AXES = ("x", "y", "z")


# ------------------------------------------------------------------------------------ views


def orbit_view(run: LoadedRun, view: OrbitView, time_value: float | None) -> Callable[[int], CameraPath]:
    """Size -> one-frame path of the orbit camera (controls checked before, by :meth:`OrbitView.checked`)."""
    times = None if time_value is None else torch.tensor([time_value])

    def at(side: int) -> CameraPath:
        return CameraPath(view_camera(run.frame, view, *run_size(run, side)), 1.0, times, "orbit view")

    return at


def training_view(run: LoadedRun, index) -> tuple[Callable[[int], CameraPath], int]:
    """Size -> one-frame path of training camera ``index`` (its pose and field of view exactly), and the index."""
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise NeuralFieldsError(f"training camera: expected an index, got {index!r}") from None
    last = run.num_cameras - 1
    if i != index or not 0 <= i <= last:
        raise NeuralFieldsError(f"training camera: index must be an integer in [0, {last}], got {index}")
    cam = run.model.info.cameras[i]
    times = torch.tensor([run.model.info.times[i]]) if run.dynamic and run.model.info.times is not None else None

    def at(side: int) -> CameraPath:
        return CameraPath(cam.resized(*run_size(run, side)), 1.0, times, "training camera")

    return at, i


def picture(viewer: Viewer, run: LoadedRun, view: Callable[[int], CameraPath], side: int, output: str,
            style: VisualStyle) -> tuple[np.ndarray, CameraPath, float]:
    """``uint8 [H, W, 3]`` at ``side`` pixels, its path and the render time in seconds."""
    start = time.perf_counter()
    path = view(side)
    with viewer.lock:
        image = render_picture(run, path, output, style)
    return image, path, time.perf_counter() - start


def refine(viewer: Viewer, run: LoadedRun, view: Callable[[int], CameraPath], side: int, output: str,
           preview: bool = True) -> Iterator[tuple[np.ndarray | str, str]]:
    """Yield a coarse picture first (large views, when ``preview``), then the full one saved as PNG, with timings."""
    cfg = viewer.cfg
    style = VisualStyle()  # depth range estimated on the first pass and kept for the second
    note = ""
    if preview and side > 2 * cfg.preview_side:
        image, path, seconds = picture(viewer, run, view, cfg.preview_side, output, style)
        note = f"; preview {path.width}x{path.height} in {seconds:.2f} s"
        yield image, f"preview {path.width}x{path.height} {output} in {seconds:.2f} s, refining to {side} px ..."
    image, path, seconds = picture(viewer, run, view, side, output, style)
    png = viewer.files.new("frame", ".png")
    Image.fromarray(image).save(png)
    depth = f", depth range {style.depth_range[0]:.3g}..{style.depth_range[1]:.3g}" if output == "depth" else ""
    yield str(png), f"{output} {path.width}x{path.height} in {seconds:.2f} s{note}{depth} · {checkpoint_note(run)}"


def pose_values(view: OrbitView) -> tuple:
    """Slider and target values that show ``view`` (clamped into the sliders' ranges)."""
    v = view.clamped()
    return round(v.azimuth, 2), round(v.elevation, 2), round(v.distance, 4), format_target(v.target)


# ------------------------------------------------------------------------------------ exposure


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to any interface


def check_exposure(host: str, auth: tuple[str, str] | None, open_access: bool) -> None:
    """Refuse to serve beyond this machine without a login unless that is asked for explicitly."""
    if auth is not None and open_access:
        raise NeuralFieldsError("--auth and --no-auth exclude each other; give one")
    if auth is not None:
        user, password = auth
        if not user or not password:
            raise NeuralFieldsError("--auth: expected USER:PASSWORD with both parts non-empty")
    elif not is_loopback(host) and not open_access:
        raise NeuralFieldsError(f"--host {host} serves the page beyond this machine: add --auth USER:PASSWORD "
                                "(or --no-auth to serve it without a login)")


# ------------------------------------------------------------------------------------ page


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
    viewer = Viewer(cfg, RunLibrary(root, cfg.cached_runs, cfg.device, cfg.exact), OutputFiles(cfg.output_dir, cfg.keep_files))
    library = viewer.library
    newest = NewestRequests(cfg.sessions)
    names = library.names()
    default_side = min(cfg.default_resolution, cfg.max_resolution)
    # Views and exports queue separately (one job each at a time) and share the model lock frame by
    # frame, so a video or mesh never holds a view back for long.
    view_group = dict(concurrency_id="view", concurrency_limit=1)
    export_group = dict(concurrency_id="export", concurrency_limit=1)

    # ---------------------------------------------------------------- view handlers

    @page_errors
    def list_runs():
        found = library.names(rescan=True)
        return gr.Dropdown(choices=found, value=found[0] if found else None)

    @page_errors
    def load_run(name):
        start = time.perf_counter()
        run = library.get(name)
        frame, n = run.frame, run.num_cameras
        elevation = float(np.clip(np.degrees(np.median(frame.elevations)), *ELEVATION_RANGE))
        fov = round(float(np.clip(frame.fov, *FOV_RANGE)), 1)
        # A tiny first render pays torch.compile's one-off cost here rather than at the first slider move.
        first = orbit_view(run, OrbitView(0.0, elevation, 1.0, 40.0), view_time(run, 0.0))
        picture(viewer, run, first, MIN_SIDE, "rgb", VisualStyle())
        status = (f"loaded {run.name} ({checkpoint_note(run)}) in {time.perf_counter() - start:.2f} s; "
                  "drag the picture or release a slider to render")
        return (describe_run(run), 0.0, round(elevation, 1), 1.0, fov, gr.Slider(value=0.0, visible=run.dynamic),
                gr.Number(value=0, label=f"training camera (0 to {n - 1})"), status, "0,0,0",
                *geometry.scene_box(run), [], paths.table([]))

    @page_errors
    def render(name, azimuth, elevation, distance, fov, resolution, output, time_value, target="0,0,0"):
        run = library.get(name)
        side = check_side(resolution, cfg)
        view = OrbitView.checked(azimuth, elevation, distance, fov, target)
        for image, status in refine(viewer, run, orbit_view(run, view, view_time(run, time_value)), side,
                                    check_output(output)):
            yield image, status, (image if isinstance(image, str) else gr.skip())

    @page_errors
    def navigate(name, azimuth, elevation, distance, fov, resolution, output, time_value, target, quality, seq,
                 request: gr.Request = None):
        """One mouse frame: ``preview`` at the preview side, ``full`` at the resolution slider's.
        A request older than one already handled for this browser is skipped without rendering."""
        skip = (gr.skip(),) * 7
        if not newest.fresh(getattr(request, "session_hash", None), seq):
            return skip
        if quality not in QUALITIES:
            raise NeuralFieldsError(f"quality: expected one of {', '.join(QUALITIES)}, got {quality!r}")
        run = library.get(name)
        side = check_side(resolution, cfg)
        view = OrbitView.checked(azimuth, elevation, distance, fov, target)
        at = orbit_view(run, view, view_time(run, time_value))
        output = check_output(output)
        if quality == "preview":
            image, path, seconds = picture(viewer, run, at, min(cfg.preview_side, side), output, VisualStyle())
            return (image, f"moving: {path.width}x{path.height} {output} in {seconds:.2f} s", gr.skip(),
                    *pose_values(view))
        *_, (png, status) = refine(viewer, run, at, side, output, preview=False)
        return (png, status, png, *pose_values(view))

    @page_errors
    def render_camera(name, index, resolution, output):
        run = library.get(name)
        side = check_side(resolution, cfg)
        view, i = training_view(run, index)
        pose = training_pose(run, i)
        skip = (gr.skip(),) * 6
        for image, status in refine(viewer, run, view, side, check_output(output)):
            if not isinstance(image, str):
                yield (image, status, gr.skip()) + skip
                continue
            orbit = OrbitView(pose.azimuth, pose.elevation, pose.distance, pose.fov)
            yield (image, f"training camera {i}: {status}", image, *pose_values(orbit)[:3],
                   round(float(np.clip(pose.fov, *FOV_RANGE)), 2),
                   gr.skip() if pose.time is None else round(pose.time, 4), "0,0,0")

    @page_errors
    def make_video(name, kind, seconds, fps, resolution, output):
        run = library.get(name)
        if kind not in PATH_KINDS:
            raise NeuralFieldsError(f"unknown camera path '{kind}'; choose from {', '.join(PATH_KINDS)}")
        side = check_side(resolution, cfg, "video resolution")
        seconds, fps, _ = check_frames(seconds, fps, cfg)
        w, h = run_size(run, side)
        path = make_path(kind, run.model.info, PathSettings(seconds=seconds, fps=fps, width=w, height=h))
        out = viewer.files.new(f"{kind}", ".mp4")
        with viewer.lock:
            summary = render_video(run.view_model, path, out, (check_output(output),), progress=False)
        return str(out), (f"{kind}: {len(path)} frames of {path.width}x{path.height} {output} in "
                          f"{summary['render_seconds']:.1f} s ({summary['frames_per_second']:.2f} frames/s)")

    # ---------------------------------------------------------------- geometry handlers

    @page_errors
    def export_glb(name, method, resolution, time_value, *crop):
        out, status = geometry.mesh_glb(viewer, library.get(name), method, resolution, time_value, crop)
        return str(out), str(out), status

    @page_errors
    def export_splats(name, time_value, *crop):
        out, status = geometry.splats(viewer, library.get(name), time_value, crop)
        return str(out), str(out), status

    # ---------------------------------------------------------------- path editor handlers

    @page_errors
    def add_keyframe(keys, name, azimuth, elevation, distance, fov, target, time_value):
        if len(keys or []) >= paths.MAX_KEYFRAMES:
            raise NeuralFieldsError(f"a path holds at most {paths.MAX_KEYFRAMES} keyframes")
        keys = list(keys or []) + [paths.keyframe(library.get(name), azimuth, elevation, distance, fov, target,
                                                  time_value)]
        return keys, paths.table(keys), len(keys) - 1, f"{len(keys)} keyframe{'s' * (len(keys) != 1)}"

    def edit(change):
        def handler(keys, index):
            keys, selected = change(list(keys or []), index)
            return keys, paths.table(keys), selected
        handler.__name__ = change.__name__  # names the API endpoint and the error messages
        return page_errors(handler)

    @page_errors
    def select_keyframe(event: gr.SelectData):
        return event.index[0] if isinstance(event.index, (list, tuple)) else event.index

    def saved(keys, name, seconds, fps, resolution, loop, output):
        run = library.get(name)
        files = paths.write_path(viewer, run, keys or [], seconds, fps, resolution, loop, check_output(output))
        return run, files

    @page_errors
    def save_path(keys, name, seconds, fps, resolution, loop, output):
        _, files = saved(keys, name, seconds, fps, resolution, loop, output)
        return [str(files.ours), str(files.nerfstudio)], files.command, f"saved {files.ours.name} and {files.nerfstudio.name}"

    @page_errors
    def preview_path(keys, name, seconds, fps, resolution, loop, output):
        run, files = saved(keys, name, seconds, fps, resolution, loop, output)
        video, status = paths.preview_path(viewer, run, files, output)
        return str(video), [str(files.ours), str(files.nerfstudio)], files.command, status

    @page_errors
    def render_keyframes(keys, name, seconds, fps, resolution, loop, output, progress=gr.Progress()):
        run, files = saved(keys, name, seconds, fps, resolution, loop, output)
        path = paths.read_path(run, files.ours)
        progress((0, len(path)), desc="rendering", unit="frames")
        video, seconds = paths.render_file(viewer, run, path, output, "path",
                                           lambda done, total: progress((done, total), desc="rendering", unit="frames"))
        status = f"{len(path)} frames of {path.width}x{path.height} {output} in {seconds:.1f} s"
        return str(video), [str(files.ours), str(files.nerfstudio)], files.command, status

    # ---------------------------------------------------------------- layout

    with gr.Blocks(title="neuralfields viewer", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown("## neuralfields viewer")
        gr.HTML("", js_on_load=page_script(), visible="hidden", elem_id="nav-script")
        keys_state = gr.State([])
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                run_box = gr.Dropdown(names, value=names[0], label="run", allow_custom_value=True)
                refresh = gr.Button("Rescan runs", size="sm")
                info = gr.Markdown()
            with gr.Column(scale=3):
                with gr.Tab("View"):
                    with gr.Row():
                        with gr.Column(scale=3):
                            image = gr.Image(label="novel view (drag: orbit · shift-drag: pan · wheel: zoom)",
                                             format="png", type="numpy", interactive=False, height=IMAGE_HEIGHT,
                                             buttons=["download", "fullscreen"], elem_id="view-image")
                            status = gr.Markdown(elem_id="view-status")
                        with gr.Column(scale=2, min_width=240):
                            azimuth = gr.Slider(-180, 180, 0, step=0.01, label="azimuth (degrees)", elem_id="azimuth")
                            elevation = gr.Slider(*ELEVATION_RANGE, value=20, step=0.01, label="elevation (degrees)",
                                                  elem_id="elevation")
                            distance = gr.Slider(*DISTANCE_RANGE, value=1.0, step=0.001,
                                                 label="distance (x training distance)", elem_id="distance")
                            fov = gr.Slider(*FOV_RANGE, value=40, step=0.5, label="field of view (degrees)",
                                            elem_id="fov")
                            resolution = gr.Slider(MIN_SIDE, cfg.max_resolution, default_side, step=8,
                                                   label=f"resolution (longest side, at most {cfg.max_resolution} px)")
                            output = gr.Dropdown(OUTPUT_CHOICES, value="rgb", label="output")
                            time_slider = gr.Slider(0, 1, 0, step=0.01, label="time", visible=False)
                            target = gr.Textbox("0,0,0", label="pan target", visible="hidden", elem_id="nav-target")
                            with gr.Row():
                                camera = gr.Number(0, precision=0, minimum=0, label="training camera")
                                to_camera = gr.Button("Go to training camera")
                            download = gr.DownloadButton("Download PNG", value=None)
                            nav_quality = gr.Textbox("full", visible="hidden", elem_id="nav-quality")
                            nav_seq = gr.Number(0, visible="hidden", elem_id="nav-seq")
                            nav_go = gr.Button("navigate", visible="hidden", elem_id="nav-go")
                with gr.Tab("Camera path"):
                    gr.Markdown("Add the current view as a keyframe, order the keyframes, then preview, save "
                                "or render the interpolated path (the same files `neuralfields render --path` reads).")
                    with gr.Row():
                        kf_add = gr.Button("Add current view", variant="primary", elem_id="kf-add")
                        kf_index = gr.Number(0, precision=0, minimum=0, label="selected keyframe", elem_id="kf-index")
                        kf_up = gr.Button("Move up", size="sm", elem_id="kf-up")
                        kf_down = gr.Button("Move down", size="sm", elem_id="kf-down")
                        kf_delete = gr.Button("Delete", size="sm", elem_id="kf-delete")
                    kf_table = gr.Dataframe(paths.table([]), headers=paths.COLUMNS, interactive=False,
                                            label="keyframes", elem_id="kf-table")
                    with gr.Row():
                        kf_seconds = gr.Slider(0.5, 20, 4, step=0.5, label="seconds", elem_id="kf-seconds")
                        kf_fps = gr.Slider(1, 30, 12, step=1, label="frames per second", elem_id="kf-fps")
                        kf_res = gr.Slider(MIN_SIDE, cfg.max_resolution, min(128, cfg.max_resolution), step=8,
                                           label="resolution (longest side)", elem_id="kf-res")
                        kf_loop = gr.Checkbox(False, label="loop back to the first keyframe")
                    with gr.Row():
                        kf_preview = gr.Button(f"Preview ({cfg.preview_side} px)", elem_id="kf-preview")
                        kf_save = gr.Button("Save path files", elem_id="kf-save")
                        kf_render = gr.Button("Render mp4", variant="primary", elem_id="kf-render")
                    kf_status = gr.Markdown(elem_id="kf-status")
                    kf_video = gr.Video(label="path", autoplay=True, loop=True, interactive=False,
                                        height=IMAGE_HEIGHT // 2 * 3 // 2, elem_id="kf-video")
                    kf_files = gr.File(label="camera path files (ours, nerfstudio's)", file_count="multiple",
                                       interactive=False, elem_id="kf-files")
                    kf_command = gr.Textbox(label="the same video from the command line", interactive=False,
                                            buttons=["copy"], elem_id="kf-command")
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
                with gr.Tab("3D"):
                    gr.Markdown("Crop box in world units (starts as the scene box); the mesh and the splats lie "
                                "inside it. Both are drawn by your browser: drag to turn, scroll to zoom.")
                    crop = []
                    for corner in ("min", "max"):
                        with gr.Row():
                            crop += [gr.Number(None, label=f"{axis} {corner}", elem_id=f"crop-{axis}{corner}")
                                     for axis in CROP_AXES]
                    with gr.Row():
                        mesh_method = gr.Radio(list(MESHERS), value=MeshConfig.method, label="mesh method")
                        mesh_res = gr.Slider(32, cfg.max_mesh_resolution,
                                             min(cfg.mesh_resolution, cfg.max_mesh_resolution), step=16,
                                             label="mesh resolution (samples along the longest side)",
                                             elem_id="mesh-res")
                    with gr.Row():
                        mesh_go = gr.Button("Export GLB mesh", variant="primary", elem_id="mesh-go")
                        splat_go = gr.Button("Export splats (.splat)", elem_id="splat-go")
                    model3d = gr.Model3D(label="3D (drag to rotate, scroll to zoom)", interactive=False,
                                         height=IMAGE_HEIGHT, elem_id="model-3d")
                    geometry_file = gr.File(label="file", interactive=False, elem_id="geometry-file")
                    geometry_status = gr.Markdown(elem_id="geometry-status")

        view_inputs = [run_box, azimuth, elevation, distance, fov, resolution, output, time_slider, target]
        view_outputs = [image, status, download]
        nav_inputs = view_inputs + [nav_quality, nav_seq]  # order mirrored in static/navigation.js
        pose_outputs = [azimuth, elevation, distance, target]
        load_outputs = [info, azimuth, elevation, distance, fov, time_slider, camera, status, target, *crop,
                        keys_state, kf_table]
        path_inputs = [keys_state, run_box, kf_seconds, kf_fps, kf_res, kf_loop, output]

        refresh.click(list_runs, None, run_box, api_name="list_runs")
        # Sliders render on release, not while dragging: a CPU render takes longer than a drag step.
        gr.on([azimuth.release, elevation.release, distance.release, fov.release, resolution.release,
               time_slider.release, output.input], render, view_inputs, view_outputs, api_name="render",
              trigger_mode="always_last", **view_group)
        # The mouse: the page script clicks the hidden button; requests piling up while one renders
        # collapse into the newest ("always_last"), and stale ones are skipped by number.
        nav_go.click(navigate, nav_inputs, view_outputs + pose_outputs, js=REQUEST_JS, api_name="navigate",
                     trigger_mode="always_last", show_progress="hidden", **view_group)
        to_camera.click(render_camera, [run_box, camera, resolution, output],
                        view_outputs + [azimuth, elevation, distance, fov, time_slider, target],
                        api_name="render_camera", **view_group)
        video_go.click(make_video, [run_box, video_kind, video_seconds, video_fps, video_res, video_output],
                       [video, video_status], api_name="render_video", **export_group)
        mesh_go.click(export_glb, [run_box, mesh_method, mesh_res, time_slider, *crop],
                      [model3d, geometry_file, geometry_status], api_name="export_mesh", **export_group)
        splat_go.click(export_splats, [run_box, time_slider, *crop], [model3d, geometry_file, geometry_status],
                       api_name="export_splats", **export_group)

        kf_add.click(add_keyframe, [keys_state, run_box, azimuth, elevation, distance, fov, target, time_slider],
                     [keys_state, kf_table, kf_index, kf_status], api_name="add_keyframe")
        for button, change in zip((kf_up, kf_down, kf_delete), paths.EDITS):
            button.click(edit(change), [keys_state, kf_index], [keys_state, kf_table, kf_index],
                         api_name=change.__name__)
        kf_table.select(select_keyframe, None, kf_index, api_visibility="private")
        kf_save.click(save_path, path_inputs, [kf_files, kf_command, kf_status], api_name="save_path")
        kf_preview.click(preview_path, path_inputs, [kf_video, kf_files, kf_command, kf_status],
                         api_name="preview_path", **export_group)
        kf_render.click(render_keyframes, path_inputs, [kf_video, kf_files, kf_command, kf_status],
                        api_name="render_path", **export_group)

        # Opening the page or picking a run loads it and renders the first view. Registered last:
        # gradio names even private events after their function, which would rename the public ones.
        demo.load(load_run, run_box, load_outputs, api_name="load_run", **view_group).success(
            render, view_inputs, view_outputs, api_visibility="private", **view_group)
        run_box.input(load_run, run_box, load_outputs, api_visibility="private", **view_group).success(
            render, view_inputs, view_outputs, api_visibility="private", **view_group)
    demo.viewer_config = cfg  # launch() needs the resolved output folder
    demo.viewer = viewer
    return demo


def launch(root: str | Path, host: str = "127.0.0.1", port: int | None = 7860, max_resolution: int | None = None,
           config: ViewerConfig | None = None, block: bool = True, auth: tuple[str, str] | None = None,
           open_access: bool = False) -> tuple[gr.Blocks, str]:
    """Build and serve the viewer over plain HTTP; prints its URL.

    Args:
        root: a run folder or a folder of runs.
        host: interface to listen on; the default keeps it on this machine (reach it from elsewhere
            with ``ssh -L PORT:127.0.0.1:PORT host``). Any other interface needs ``auth`` or ``open_access``.
        port: TCP port; None lets gradio pick a free one from 7860 up.
        block: wait until interrupted (the CLI); False returns at once with the server running
            (tests; stop it with ``demo.close()``).
        auth: ``(user, password)``: gradio's login page guards the page and its API.
        open_access: serve a non-loopback ``host`` without a login (``--no-auth``).
    Returns:
        the Blocks and the URL.
    """
    check_exposure(host, auth, open_access)
    demo = build_app(root, max_resolution, config)
    cfg: ViewerConfig = demo.viewer_config
    if cfg.threads is not None:
        # Process-wide, hence here and not in build_app: on a busy machine one thread renders
        # several times faster than two fighting other processes for the cores.
        torch.set_num_threads(cfg.threads)
    demo.queue(default_concurrency_limit=1, max_size=cfg.queue_size)
    try:
        _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                                share=False, ssr_mode=False, show_error=False, allowed_paths=[cfg.output_dir],
                                footer_links=["api"], auth=auth)
    except OSError as exc:
        if "empty port" in str(exc):  # gradio's wording for a port that is taken
            raise NeuralFieldsError(f"{host}:{port} is already in use; choose another --port") from None
        raise NeuralFieldsError(f"cannot listen on {host}:{port}: {str(exc).splitlines()[0]}") from None
    login = " (login required)" if auth else ""
    print(f"neuralfields viewer at {url}{login} (runs under {Path(root)}); Ctrl+C stops it", flush=True)
    if block:
        demo.block_thread()
    return demo, url
