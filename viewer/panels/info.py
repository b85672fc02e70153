"""The run column: the run picker, its rescan button and the run's description; and loading a run
(on opening the page or picking one), which resets the other panels and renders the first view,
with a progress bar through a bake made on the way."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import numpy as np

from neuralfields.bake import BakeProgress
from neuralfields.bake.store import BAKE_DIR, mib
from neuralfields.export.video import VisualStyle

from .. import geometry, paths
from ..core import MIN_SIDE, Viewer, page_errors, view_time
from ..navigation import ELEVATION_RANGE, FOV_RANGE, OrbitView, view_mark
from ..runs import checkpoint_note, describe_run
from ..views import orbit_view, picture
from .common import VIEW_QUEUE, ViewTab


def run_panel(viewer: Viewer) -> tuple[gr.Dropdown, gr.Markdown]:
    """The run picker, a rescan button and the run's description (filled in when a run loads)."""
    library = viewer.library
    names = library.names()

    @page_errors
    def list_runs():
        found = library.names(rescan=True)
        return gr.Dropdown(choices=found, value=found[0] if found else None)

    run_box = gr.Dropdown(names, value=names[0], label="run", allow_custom_value=True)
    refresh = gr.Button("Rescan runs", size="sm")
    info = gr.Markdown()

    refresh.click(list_runs, None, run_box, api_name="list_runs")
    return run_box, info


def bake_line(where: BakeProgress, folder: Path) -> str:
    """``baking: filling the lattice (about 6.3 MiB into runs/tiny/baked/)``: what a bake is doing."""
    size = f" (about {mib(where.expected_bytes)} MiB into {folder}/)" if where.expected_bytes is not None else ""
    return f"baking: {where.stage}{size}"


class BakeBar:
    """A bake's stages on the page's progress bar; keeps the last (``None``: no bake was made)."""

    def __init__(self, progress: gr.Progress, folder: Path):
        self.progress, self.folder = progress, folder
        self.last: BakeProgress | None = None

    def __call__(self, where: BakeProgress) -> None:
        self.last = where
        self.progress((where.done, where.total), desc=bake_line(where, self.folder), unit=where.unit)


def run_loading(demo: gr.Blocks, viewer: Viewer, info: gr.Markdown, view_tab: ViewTab, crop: list[gr.Number],
                keys_state: gr.State, kf_table: gr.Dataframe) -> None:
    """Load the run on opening the page or picking one: its description, the sliders' starting pose, the
    training camera's range, the crop box at the scene box and no keyframes; then render the first view."""
    library = viewer.library

    @page_errors
    def load_run(name, progress=gr.Progress()):
        start = time.perf_counter()
        progress(0.0, desc=f"loading {name}")
        bar = BakeBar(progress, library.path(name) / BAKE_DIR)
        run = library.get(name, report=bar)
        progress(1.0, desc="rendering a first small view")
        frame, n = run.frame, run.num_cameras
        elevation = float(np.clip(np.degrees(np.median(frame.elevations)), *ELEVATION_RANGE))
        fov = round(float(np.clip(frame.fov, *FOV_RANGE)), 1)
        # A tiny first render pays torch.compile's one-off cost here rather than at the first slider move.
        first = orbit_view(run, OrbitView(0.0, elevation, 1.0, 40.0), view_time(run, 0.0))
        picture(viewer, run, first, MIN_SIDE, "rgb", VisualStyle())
        baked = "" if bar.last is None else f", baked now: {mib(bar.last.expected_bytes)} MiB in {bar.folder}/"
        status = (f"loaded {run.name} ({checkpoint_note(run)}{baked}) in {time.perf_counter() - start:.2f} s; "
                  "drag the picture or release a slider to render")
        return (describe_run(run), 0.0, round(elevation, 1), 1.0, fov, gr.Slider(value=0.0, visible=run.dynamic),
                gr.Number(value=0, label=f"training camera (0 to {n - 1})"), status, "0,0,0",
                *geometry.scene_box(run), [], paths.table([]), view_mark())

    load_outputs = [info, view_tab.azimuth, view_tab.elevation, view_tab.distance, view_tab.fov, view_tab.time_slider,
                    view_tab.camera, view_tab.status, view_tab.target, *crop, keys_state, kf_table, view_tab.mark]
    run_box, render = view_tab.run_box, view_tab.render
    # Opening the page or picking a run loads it and renders the first view. Registered last:
    # gradio names even private events after their function, which would rename the public ones.
    demo.load(load_run, run_box, load_outputs, api_name="load_run", **VIEW_QUEUE).success(
        render, view_tab.inputs, view_tab.outputs, api_visibility="private", **VIEW_QUEUE)
    run_box.input(load_run, run_box, load_outputs, api_visibility="private", **VIEW_QUEUE).success(
        render, view_tab.inputs, view_tab.outputs, api_visibility="private", **VIEW_QUEUE)
