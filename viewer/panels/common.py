"""What the panels share: the View tab's components (:class:`ViewTab`), the queues and display sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gradio as gr

OUTPUT_CHOICES = [("rgb", "rgb"), ("depth", "depth"), ("normals", "normal"), ("opacity", "opacity")]
IMAGE_HEIGHT = 480  # display height in the page; small renders and previews are scaled up to it

# Views and exports queue separately (one job each at a time) and share the model lock frame by
# frame, so a video or mesh never holds a view back for long.
VIEW_QUEUE = dict(concurrency_id="view", concurrency_limit=1)
EXPORT_QUEUE = dict(concurrency_id="export", concurrency_limit=1)


@dataclass
class ViewTab:
    """The run picker and the View tab's components that other panels read or set, and ``render``
    (the handler that draws the view from them)."""

    run_box: gr.Dropdown
    azimuth: gr.Slider
    elevation: gr.Slider
    distance: gr.Slider
    fov: gr.Slider
    resolution: gr.Slider
    output: gr.Dropdown
    time_slider: gr.Slider
    target: gr.Textbox
    camera: gr.Number
    mark: gr.Number  # hidden; a handler that sets the view sets a new navigation.view_mark() here
    image: gr.Image
    status: gr.Markdown
    download: gr.DownloadButton
    render: Callable

    @property
    def inputs(self) -> list:
        """The run and the view's controls, in the order of ``render``'s parameters."""
        return [self.run_box, self.azimuth, self.elevation, self.distance, self.fov, self.resolution, self.output,
                self.time_slider, self.target]

    @property
    def outputs(self) -> list:
        """The picture, its status line and the PNG download."""
        return [self.image, self.status, self.download]

    @property
    def pose(self) -> list:
        """The controls a mouse move changes."""
        return [self.azimuth, self.elevation, self.distance, self.target]
