"""The page's panels. Each creates its components in the current Blocks context and wires their
events; :func:`viewer.app.build_app` lays them out and passes each the components it shares."""

from .common import ViewTab
from .export import export_panel
from .info import run_loading, run_panel
from .path_editor import path_editor_panel
from .splats import splats_panel
from .video import video_panel
from .view import view_panel

__all__ = ["ViewTab", "export_panel", "path_editor_panel", "run_loading", "run_panel", "splats_panel", "video_panel",
           "view_panel"]
