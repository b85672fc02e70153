"""One entry point for every camera path: a path kind's name or a camera path file."""

from __future__ import annotations

from pathlib import Path

from ..errors import NeuralFieldsError
from .formats import load_path_file
from .kinds import PATH_KINDS, CameraPath, PathSettings


def default_path(info) -> str:
    """The path kind a run renders without ``--path``: the LLFF spiral for forward-facing captures
    (``info.kind``), an orbit otherwise."""
    return "spiral" if getattr(info, "kind", "object") == "forward" else "orbit"


def make_path(spec: str | Path, info, settings: PathSettings | None = None) -> CameraPath:
    """A :class:`CameraPath` from a kind name (``orbit``, ``spiral``, ``interpolate``) or a JSON file.

    Args:
        spec: path kind or file (ours or nerfstudio's ``camera_path.json``).
        info: the run's :class:`~neuralfields.model.SceneInfo` (training cameras, dynamic flag).
        settings: size, duration, field of view and time sweep (None fields are derived).
    """
    settings = settings or PathSettings()
    if settings.fov is not None and not 0 < settings.fov < 180:
        raise NeuralFieldsError(f"--fov: field of view must lie in (0, 180) degrees, got {settings.fov}")
    if str(spec) in PATH_KINDS:
        return PATH_KINDS[str(spec)](info, settings)
    path = Path(spec)
    if path.suffix.lower() != ".json":
        raise NeuralFieldsError(f"--path: unknown path kind '{spec}'; use one of {', '.join(PATH_KINDS)} or a .json file")
    return load_path_file(path, info, settings)
