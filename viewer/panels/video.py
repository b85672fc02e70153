"""The Video tab: a quick mp4 along one of the generated camera paths (orbit, spiral)."""

from __future__ import annotations

import gradio as gr

from neuralfields.camera_paths import PATH_KINDS, PathSettings, make_path
from neuralfields.errors import NeuralFieldsError
from neuralfields.export.video import render_video

from ..core import MIN_SIDE, Viewer, check_frames, check_output, check_side, page_errors, run_size
from .common import EXPORT_QUEUE, IMAGE_HEIGHT, OUTPUT_CHOICES

VIDEO_PATHS = ("orbit", "spiral")  # the CLI's generated paths that suit a quick look (see PATH_KINDS)


def video_panel(viewer: Viewer, run_box: gr.Dropdown) -> None:
    """The Video tab for the run chosen in ``run_box``."""
    cfg, library = viewer.cfg, viewer.library

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

    video_go.click(make_video, [run_box, video_kind, video_seconds, video_fps, video_res, video_output],
                   [video, video_status], api_name="render_video", **EXPORT_QUEUE)
