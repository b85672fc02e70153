"""The 3D tab: a GLB mesh of the run inside a crop box, exported as a file and drawn by the
browser (see :mod:`..geometry`); Gaussian splats have their own tab (:mod:`.splats`)."""

from __future__ import annotations

import gradio as gr

from neuralfields.export.mesh import MESHERS, MeshConfig

from .. import geometry
from ..core import Viewer, page_errors
from .common import EXPORT_QUEUE, IMAGE_HEIGHT, ViewTab

CROP_AXES = ("x", "y", "z")


def export_panel(viewer: Viewer, view_tab: ViewTab) -> list[gr.Number]:
    """The 3D tab; meshes at the View tab's time. Returns the crop box's fields (x, y, z min, then max)."""
    cfg, library = viewer.cfg, viewer.library
    run_box, time_slider = view_tab.run_box, view_tab.time_slider

    @page_errors
    def export_glb(name, method, resolution, time_value, *crop):
        out, status = geometry.mesh_glb(viewer, library.get(name), method, resolution, time_value, crop)
        return str(out), str(out), status

    with gr.Tab("3D"):
        gr.Markdown("Crop box in world units (starts as the scene box); the mesh lies inside it. Your "
                    "browser draws it: drag to turn, scroll to zoom. Gaussian splats: the Splats tab.")
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
        mesh_go = gr.Button("Export GLB mesh", variant="primary", elem_id="mesh-go")
        model3d = gr.Model3D(label="3D (drag to rotate, scroll to zoom)", interactive=False,
                             height=IMAGE_HEIGHT, elem_id="model-3d")
        geometry_file = gr.File(label="file", interactive=False, elem_id="geometry-file")
        geometry_status = gr.Markdown(elem_id="geometry-status")

    mesh_go.click(export_glb, [run_box, mesh_method, mesh_res, time_slider, *crop],
                  [model3d, geometry_file, geometry_status], api_name="export_mesh", **EXPORT_QUEUE)
    return crop
