"""The Gradio page: novel views with mouse navigation, training cameras, videos, a camera-path
editor, a browser-side mesh and Gaussian splats of trained runs.

A thin layer over the library: cameras come from :mod:`neuralfields.camera_paths` and
:mod:`.navigation` (orbit views with a pan target), pictures and videos from
:mod:`neuralfields.export.video`, geometry from :mod:`.geometry`, paths from :mod:`.paths`.
The page is laid out here from the panels in :mod:`.panels` (one a tab or column, each with its
handlers); handlers check the request, call those functions, time them and write the files the
page shows; every error reaches the page (and API clients) as a one-line message.

Every public handler has an ``api_name`` (``/load_run``, ``/render``, ``/navigate``,
``/render_camera``, ``/render_video``, ``/export_mesh``, ``/splats``, ``/make_splats``, ``/add_keyframe``,
``/preview_path``, ``/save_path``, ``/render_path``, ``/list_runs`` ...), so scripts can drive the
viewer with ``gradio_client``.
"""

from __future__ import annotations

import os

# Offline by design: no usage analytics and no Hugging Face hub calls (read when gradio is imported).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

import ipaddress  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import torch  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from neuralfields.errors import NeuralFieldsError  # noqa: E402

from .core import (MIN_SIDE, OutputFiles, Viewer, ViewerBlocks, ViewerConfig,  # noqa: E402,F401 - check_side re-exported
                   check_side, log_to_terminal)
from .login import LoginPageGuard  # noqa: E402
from .navigation import page_script  # noqa: E402
from .panels import (export_panel, path_editor_panel, run_loading, run_panel, splats_panel,  # noqa: E402
                     video_panel, view_panel)
from .runs import RunLibrary  # noqa: E402

__all__ = ["ViewerConfig", "build_app", "launch", "check_exposure"]


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
    viewer = Viewer(cfg, RunLibrary(root, cfg.cached_runs, cfg.device, cfg.exact, cfg.bake),
                    OutputFiles(cfg.output_dir, cfg.keep_files))
    with ViewerBlocks(title="neuralfields viewer", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown("## neuralfields viewer")
        gr.HTML("", js_on_load=page_script(), visible="hidden", elem_id="nav-script")
        keys_state = gr.State([])
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                run_box, info = run_panel(viewer)
            with gr.Column(scale=3):
                view_tab = view_panel(viewer, run_box)
                kf_table = path_editor_panel(viewer, view_tab, keys_state)
                video_panel(viewer, run_box)
                crop = export_panel(viewer, view_tab)
                splats_panel(viewer, run_box)
        run_loading(demo, viewer, info, view_tab, crop, keys_state, kf_table)
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
        auth: ``(user, password)``: gradio's login page guards the page and its API; before login
            nothing about the runs is served (:mod:`.login`).
        open_access: serve a non-loopback ``host`` without a login (``--no-auth``).
    Returns:
        the Blocks and the URL.
    """
    check_exposure(host, auth, open_access)
    log_to_terminal()  # baking, refusals and crashes each show in the server's terminal
    demo = build_app(root, max_resolution, config)
    cfg: ViewerConfig = demo.viewer_config
    if cfg.threads is not None:
        # Process-wide, hence here and not in build_app: on a busy machine one thread renders
        # several times faster than two fighting other processes for the cores.
        torch.set_num_threads(cfg.threads)
    demo.queue(default_concurrency_limit=1, max_size=cfg.queue_size)
    guard = {"middleware": [Middleware(LoginPageGuard)]} if auth else None
    try:
        _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                                share=False, ssr_mode=False, show_error=False, allowed_paths=[cfg.output_dir],
                                footer_links=["api"], auth=auth, app_kwargs=guard,
                                run_history=False)  # offline: no run history page (it offers hub buckets)
    except OSError as exc:
        if "empty port" in str(exc):  # gradio's wording for a port that is taken
            raise NeuralFieldsError(f"{host}:{port} is already in use; choose another --port") from None
        raise NeuralFieldsError(f"cannot listen on {host}:{port}: {str(exc).splitlines()[0]}") from None
    login = " (login required)" if auth else ""
    print(f"neuralfields viewer at {url}{login} (runs under {Path(root)}); Ctrl+C stops it", flush=True)
    if block:
        demo.block_thread()
    return demo, url
