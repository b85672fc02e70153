"""Mouse navigation of the View tab: drag to orbit, shift-drag to pan, wheel to zoom.

The page script (``static/navigation.js``) keeps the camera while the mouse moves and asks for
frames by clicking a hidden button, whose js swaps the mouse's camera, the quality and a request
number into the request; each frame comes back with the slider values that show it.
"""

from __future__ import annotations

import gradio as gr

from neuralfields.errors import NeuralFieldsError
from neuralfields.export.video import VisualStyle

from ..core import Viewer, check_output, check_side, page_errors, view_time
from ..navigation import QUALITIES, REQUEST_JS, NewestRequests, OrbitView
from ..views import orbit_view, picture, pose_values, refine
from .common import VIEW_QUEUE, ViewTab


def navigation_panel(viewer: Viewer, view_tab: ViewTab) -> None:
    """The hidden components the page script fills in, and the ``navigate`` endpoint that renders them."""
    cfg, library = viewer.cfg, viewer.library
    newest = NewestRequests(cfg.sessions)

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

    nav_quality = gr.Textbox("full", visible="hidden", elem_id="nav-quality")
    nav_seq = gr.Number(0, visible="hidden", elem_id="nav-seq")
    nav_go = gr.Button("navigate", visible="hidden", elem_id="nav-go")
    nav_inputs = view_tab.inputs + [nav_quality, nav_seq]  # order mirrored in static/navigation.js
    # The mouse: the page script clicks the hidden button; requests piling up while one renders
    # collapse into the newest ("always_last"), and stale ones are skipped by number.
    nav_go.click(navigate, nav_inputs, view_tab.outputs + view_tab.pose, js=REQUEST_JS, api_name="navigate",
                 trigger_mode="always_last", show_progress="hidden", **VIEW_QUEUE)
