"""Browser viewer for trained runs (``neuralfields view``): a Gradio page over the library.

``build_app(root, max_resolution=...)`` returns the ``gr.Blocks``; ``launch(root, host, port)``
serves it and prints the URL. Needs the ``viewer`` extra (``pip install 'neuralfields[viewer]'``).
"""

from .app import ViewerConfig, build_app, check_exposure, launch
from .runs import RunLibrary, find_runs

__all__ = ["ViewerConfig", "build_app", "check_exposure", "launch", "RunLibrary", "find_runs"]
