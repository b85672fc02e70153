"""``neuralfields view``: serve the browser viewer over a run folder or a folder of runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import NeuralFieldsError
from .common import add_device_argument, device_from
from .render import number_flag

VIEWER_MODULES = ("viewer", "gradio")  # what a missing viewer extra shows up as


def register(sub) -> None:
    p = sub.add_parser("view", help="browse runs in a web page: novel views, training cameras, videos, meshes",
                       description="Start the Gradio viewer and print its URL. It listens on 127.0.0.1 by default; "
                                   "from another machine use ssh -L PORT:127.0.0.1:PORT. Needs the viewer extra.")
    p.add_argument("runs", nargs="?", default="runs", type=Path, metavar="RUN|RUNS_DIR",
                   help="a run folder or a folder of runs (default: runs); only these runs are offered")
    p.add_argument("--port", default="7860", help="TCP port (default 7860)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1; any other, such as 0.0.0.0, needs --auth or --no-auth)")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="require this login for the page and its API")
    p.add_argument("--no-auth", action="store_true",
                   help="serve a non-loopback --host without a login (anyone who reaches the port sees your runs)")
    p.add_argument("--max-resolution", default="1024", metavar="PIXELS",
                   help="largest image side in pixels the page may request (default 1024)")
    p.add_argument("--exact", action="store_true",
                   help="render views with the live field, not the run's bake (made when a run is first opened)")
    p.add_argument("--threads", metavar="N",
                   help="torch CPU threads (default: torch's choice; 1 is often faster on a busy machine)")
    add_device_argument(p)
    p.set_defaults(handler=run)


def auth_flag(text: str | None) -> tuple[str, str] | None:
    """``USER:PASSWORD`` (split at the first colon; the password may hold colons) -> a pair."""
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise NeuralFieldsError("--auth: expected USER:PASSWORD with both parts non-empty")
    return user, password


def run(args: argparse.Namespace) -> int:
    port = number_flag(args.port, "--port", int, 1, 65535, inclusive=True)
    auth = auth_flag(args.auth)
    max_resolution = number_flag(args.max_resolution, "--max-resolution", int, 16, inclusive=True)
    threads = number_flag(args.threads, "--threads", int, 1, inclusive=True)
    try:
        from viewer import ViewerConfig, check_exposure, launch
    except ImportError as exc:
        if exc.name not in VIEWER_MODULES:
            raise
        raise NeuralFieldsError(f"the viewer needs {exc.name}: pip install 'neuralfields[viewer]'") from None
    check_exposure(args.host, auth, args.no_auth)  # before the device and the runs are touched
    device = str(device_from(args))
    launch(args.runs, host=args.host, port=port, max_resolution=max_resolution,
           config=ViewerConfig(threads=threads, device=device, exact=args.exact), auth=auth, open_access=args.no_auth)
    return 0
