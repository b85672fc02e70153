"""The View tab: the rendered picture, the sliders of its orbit pose, its output, and a training
camera to jump to. Sliders render on release; the mouse goes through :mod:`.navigation`."""

from __future__ import annotations

import gradio as gr
import numpy as np

from ..core import MIN_SIDE, Viewer, check_output, check_side, page_errors, view_time
from ..navigation import DISTANCE_RANGE, ELEVATION_RANGE, FOV_RANGE, OrbitView, view_mark
from ..runs import training_pose
from ..views import orbit_view, pose_values, refine, training_view
from .common import IMAGE_HEIGHT, OUTPUT_CHOICES, VIEW_QUEUE, ViewTab
from .navigation import navigation_panel


def view_panel(viewer: Viewer, run_box: gr.Dropdown) -> ViewTab:
    """The View tab for the run chosen in ``run_box``; wires the sliders, the mouse and the training camera."""
    cfg, library = viewer.cfg, viewer.library
    default_side = min(cfg.default_resolution, cfg.max_resolution)

    @page_errors
    def render(name, azimuth, elevation, distance, fov, resolution, output, time_value, target="0,0,0"):
        run = library.get(name)
        side = check_side(resolution, cfg)
        view = OrbitView.checked(azimuth, elevation, distance, fov, target)
        for image, status in refine(viewer, run, orbit_view(run, view, view_time(run, time_value)), side,
                                    check_output(output)):
            yield image, status, (image if isinstance(image, str) else gr.skip())

    @page_errors
    def render_camera(name, index, resolution, output):
        run = library.get(name)
        side = check_side(resolution, cfg)
        view, i = training_view(run, index)
        pose = training_pose(run, i)
        skip = (gr.skip(),) * 7
        for image, status in refine(viewer, run, view, side, check_output(output)):
            if not isinstance(image, str):
                yield (image, status, gr.skip()) + skip
                continue
            orbit = OrbitView(pose.azimuth, pose.elevation, pose.distance, pose.fov)
            yield (image, f"training camera {i}: {status}", image, *pose_values(orbit)[:3],
                   round(float(np.clip(pose.fov, *FOV_RANGE)), 2),
                   gr.skip() if pose.time is None else round(pose.time, 4), "0,0,0", view_mark())

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
                mark = gr.Number(0, visible="hidden", elem_id="nav-mark")
                with gr.Row():
                    camera = gr.Number(0, precision=0, minimum=0, label="training camera")
                    to_camera = gr.Button("Go to training camera")
                download = gr.DownloadButton("Download PNG", value=None)
                view_tab = ViewTab(run_box, azimuth, elevation, distance, fov, resolution, output, time_slider,
                                   target, camera, mark, image, status, download, render)
                # Sliders render on release, not while dragging: a CPU render takes longer than a drag step.
                gr.on([azimuth.release, elevation.release, distance.release, fov.release, resolution.release,
                       time_slider.release, output.input], render, view_tab.inputs, view_tab.outputs, api_name="render",
                      trigger_mode="always_last", **VIEW_QUEUE)
                navigation_panel(viewer, view_tab)
    to_camera.click(render_camera, [run_box, camera, resolution, output],
                    view_tab.outputs + [azimuth, elevation, distance, fov, time_slider, target, mark],
                    api_name="render_camera", **VIEW_QUEUE)
    return view_tab
