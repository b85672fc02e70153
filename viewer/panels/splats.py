"""The Splats tab: the run's distilled Gaussian splats, drawn by the browser (``gr.Model3D``
draws a splat ``.ply`` with gsplat.js), and *Make splats* for runs without any (see :mod:`..splats`)."""

from __future__ import annotations

import gradio as gr

from ..core import Viewer, page_errors
from ..splats import SplatShelf
from .common import EXPORT_QUEUE, IMAGE_HEIGHT


def splats_panel(viewer: Viewer, run_box: gr.Dropdown) -> None:
    """The Splats tab; shows the picked run's splats when the tab is opened or another run is picked."""
    library = viewer.library
    shelf = SplatShelf(viewer)

    @page_errors
    def show_splats(name):
        run = library.get(name)
        shown = shelf.show(run)
        if shown is None:
            return None, None, shelf.missing(run)
        return str(shown.path), str(shown.path), shown.status

    @page_errors
    def make_splats(name, progress=gr.Progress()):
        run = library.get(name)
        shown = shelf.make(run, lambda stage, done, total: progress((done, total), desc=stage, unit="steps"))
        return str(shown.path), str(shown.path), shown.status

    @page_errors
    def offer_making(name):
        return gr.Button(visible=shelf.offers_making(library.get(name)))

    with gr.Tab("Splats") as tab:
        gr.Markdown("3D Gaussian splats distilled from the run (`neuralfields distill RUN --student gaussians`), "
                    "drawn by your browser: drag to turn, scroll to zoom.")
        make = gr.Button("Make splats", variant="primary", visible=False, elem_id="splats-make")
        status = gr.Markdown(elem_id="splats-status")
        model3d = gr.Model3D(label="splats (drag to rotate, scroll to zoom)", interactive=False,
                             height=IMAGE_HEIGHT, elem_id="splats-3d")
        splat_file = gr.File(label="splats (.ply, INRIA 3DGS layout)", interactive=False, elem_id="splats-file")

    outputs = [model3d, splat_file, status]
    tab.select(show_splats, run_box, outputs, api_name="splats").success(
        offer_making, run_box, make, api_visibility="private")
    run_box.input(show_splats, run_box, outputs, api_visibility="private").success(
        offer_making, run_box, make, api_visibility="private")
    make.click(make_splats, run_box, outputs, api_name="make_splats", **EXPORT_QUEUE).success(
        offer_making, run_box, make, api_visibility="private")
