"""The Camera path tab: keyframes taken from the current view, ordered and edited, then
previewed, saved as path files (ours and nerfstudio's) or rendered to mp4."""

from __future__ import annotations

import gradio as gr

from neuralfields.errors import NeuralFieldsError

from .. import paths
from ..core import MIN_SIDE, Viewer, check_output, page_errors
from .common import EXPORT_QUEUE, IMAGE_HEIGHT, ViewTab


def path_editor_panel(viewer: Viewer, view_tab: ViewTab, keys_state: gr.State) -> gr.Dataframe:
    """The Camera path tab; keyframes live in ``keys_state``. Returns the keyframe table."""
    cfg, library = viewer.cfg, viewer.library
    run_box, output = view_tab.run_box, view_tab.output

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

    path_inputs = [keys_state, run_box, kf_seconds, kf_fps, kf_res, kf_loop, output]
    current_view = [view_tab.azimuth, view_tab.elevation, view_tab.distance, view_tab.fov, view_tab.target,
                    view_tab.time_slider]
    kf_add.click(add_keyframe, [keys_state, run_box, *current_view], [keys_state, kf_table, kf_index, kf_status],
                 api_name="add_keyframe")
    for button, change in zip((kf_up, kf_down, kf_delete), paths.EDITS):
        button.click(edit(change), [keys_state, kf_index], [keys_state, kf_table, kf_index],
                     api_name=change.__name__)
    kf_table.select(select_keyframe, None, kf_index, api_visibility="private")
    kf_save.click(save_path, path_inputs, [kf_files, kf_command, kf_status], api_name="save_path")
    kf_preview.click(preview_path, path_inputs, [kf_video, kf_files, kf_command, kf_status],
                     api_name="preview_path", **EXPORT_QUEUE)
    kf_render.click(render_keyframes, path_inputs, [kf_video, kf_files, kf_command, kf_status],
                    api_name="render_path", **EXPORT_QUEUE)
    return kf_table
