"""Camera paths for videos and the viewer: orbit, spiral, interpolation, keyframe files.

* :mod:`.rotations`: quaternions and splines (pure math);
* :mod:`.kinds`: the scene frame, the path kinds (:data:`PATH_KINDS`), :class:`CameraPath` and
  :class:`PathSettings`;
* :mod:`.formats`: our keyframe files and nerfstudio's ``camera_path.json`` (docs/camera_paths.md);
* :mod:`.spec`: :func:`make_path`, a path from a kind name or a file; :func:`default_path`.

Imports point one way: spec -> formats -> kinds -> rotations.
"""

from .formats import load_path_file, save_keyframes, save_nerfstudio
from .kinds import (
    PATH_KINDS, CameraPath, PathSettings, SceneFrame, cameras_from_poses, estimate_scene_frame,
    interpolate_training_path, orbit_camera, orbit_path, spiral_path, vertical_fov, with_size,
)
from .rotations import catmull_rom, interpolate_poses, matrix_to_quaternion, quaternion_to_matrix, slerp
from .spec import default_path, make_path

__all__ = [
    "CameraPath", "PathSettings", "SceneFrame", "PATH_KINDS", "default_path", "estimate_scene_frame", "make_path",
    "load_path_file",
    "orbit_camera", "orbit_path", "spiral_path", "interpolate_poses", "interpolate_training_path", "save_keyframes",
    "save_nerfstudio", "slerp", "catmull_rom", "matrix_to_quaternion", "quaternion_to_matrix", "cameras_from_poses",
    "vertical_fov", "with_size",
]
