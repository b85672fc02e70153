"""Bring a captured scene into a canonical frame: up is +z, the scene is centred and fits a box.

Real captures (COLMAP, LLFF, phone apps) come in arbitrary units and orientations. The field
and its occupancy grid want the scene inside a known box, so loaders compute a similarity
transform ``T = [[s R, t], [0, 0, 0, 1]]`` with :func:`normalize_poses` and apply it to the
cameras (:func:`apply_transform`) and the sparse points (:func:`transform_points`).

Conventions: camera-to-world matrices in the OpenGL convention (x right, y up, the camera looks
along -z; see :mod:`neuralfields.cameras`), all arithmetic in float64.

Choices made here:

* **Up**: the mean of the cameras' y axes is rotated onto +z (people hold cameras upright).
* **Centre**: when the cameras look inward (:func:`looks_inward`), the point nearest to all their
  optical axes in the least-squares sense (the focus of the capture), so the object sits at the
  origin. Otherwise (forward-facing or outward-looking rigs) the centre of the bounding box of
  the camera centres and the robust point bounds, which makes the best use of the box; without
  points that is the centre of the cameras' bounding box.
* **Scale**: the largest per-axis distance from the centre to a camera centre or to the robust
  point bounds (per-axis quantiles ``1 - q`` and ``q`` of the rotated points) maps to
  ``box * margin``, so everything lies in ``[-box * margin, box * margin]^3``.

Forward-facing captures (:func:`camera_facing`: every camera looks within a small cone of one
direction and what they see lies in front of all of them, LLFF's case) are normalised as NeRF
normalises LLFF scenes instead (:func:`normalize_forward`): the same up, the mean camera centre
at the origin, and the scale that puts the nearest depth the cameras see at
``1 / NEAR_PLANE_FRACTION`` (NeRF's ``bd_factor`` 0.75), so that the near plane of NDC lies at
depth 1 in front of the average camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A capture "looks inward" when the median angle between a camera's optical axis and the direction
# to the focus point is below this (degrees) ...
_INWARD_MAX_ANGLE = 30.0
# ... and the focus is not much further away than the cameras are spread (nearly parallel axes of a
# forward-facing rig meet, if at all, far away).
_INWARD_MAX_DISTANCE = 4.0
# Points whose robust extent from the centre exceeds this many camera distances make a scene unbounded.
_FAR_POINTS = 2.5
# Forward-facing: every optical axis lies within this angle (degrees) of the mean one. LLFF scenes
# stay within about 10; the 360-degree captures (an object photographed from around it) spread
# over 50 and more.
_FORWARD_MAX_ANGLE = 30.0
# NeRF's bd_factor: NDC's near plane lies at this fraction of the nearest depth the cameras see.
NEAR_PLANE_FRACTION = 0.75
# Points nearer to a camera than this quantile of their depths in front of it are outliers.
_NEAR_QUANTILE = 0.01
_NEAR_POINTS = 20000  # points that estimate it


def _as_c2w(c2w: np.ndarray) -> np.ndarray:
    """``[N, 3, 4]`` float64 view of ``[N, 3, 4]`` or ``[N, 4, 4]`` camera-to-world matrices."""
    c2w = np.asarray(c2w, dtype=np.float64)
    if c2w.ndim != 3 or c2w.shape[1:] not in ((3, 4), (4, 4)):
        raise ValueError(f"expected camera-to-world matrices [N, 3, 4] or [N, 4, 4], got {c2w.shape}")
    return c2w[:, :3, :4]


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation ``[3, 3]`` taking direction ``a`` ``[3]`` onto direction ``b`` ``[3]``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    if c < -1 + 1e-9:
        # Opposite directions: half a turn about any axis perpendicular to a.
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)  # Rodrigues' formula with sin/cos folded in


def focus_point(c2w: np.ndarray) -> np.ndarray:
    """The point ``[3]`` closest to all optical axes (least squares); ill-posed for parallel axes."""
    c2w = _as_c2w(c2w)
    origins, dirs = c2w[:, :, 3], -c2w[:, :, 2]
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    proj = np.eye(3)[None] - dirs[:, :, None] * dirs[:, None, :]  # [N, 3, 3] projects off each axis
    a = proj.sum(0)
    b = np.einsum("nij,nj->i", proj, origins)
    return np.linalg.lstsq(a, b, rcond=None)[0]


def looks_inward(c2w: np.ndarray) -> bool:
    """Whether the cameras look at a common region in front of them (an object capture)."""
    c2w = _as_c2w(c2w)
    if len(c2w) < 3:
        return False
    origins, dirs = c2w[:, :, 3], -c2w[:, :, 2]
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    focus = focus_point(c2w)
    to_focus = focus - origins
    dist = np.linalg.norm(to_focus, axis=1)
    cos = np.einsum("ni,ni->n", dirs, to_focus) / np.maximum(dist, 1e-12)
    spread = np.sqrt(((origins - origins.mean(0)) ** 2).sum(1).mean())
    if spread < 1e-9:  # all cameras at one point: a panorama, not an object capture
        return False
    angle = np.degrees(np.arccos(np.clip(np.median(cos), -1, 1)))
    return bool(angle < _INWARD_MAX_ANGLE and np.median(dist) < _INWARD_MAX_DISTANCE * spread)


def point_near_depths(c2w: np.ndarray, points: np.ndarray | None) -> np.ndarray | None:
    """``[N]`` the nearest depth each camera sees among ``points [P, 3]`` (a low quantile of the
    depths along its optical axis of the points in front of it), or None without points."""
    if points is None or len(points) == 0:
        return None
    c2w = _as_c2w(c2w)
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    if len(pts) > _NEAR_POINTS:  # a fixed subset keeps the [N, P] depth table small
        pts = pts[np.random.default_rng(0).choice(len(pts), _NEAR_POINTS, replace=False)]
    depth = np.einsum("pj,nj->np", pts, -c2w[:, :, 2]) + np.einsum("nj,nj->n", c2w[:, :, 3], c2w[:, :, 2])[:, None]
    depth = depth / np.linalg.norm(c2w[:, :, 2], axis=1)[:, None]
    out = np.full(len(c2w), np.nan)
    for i, row in enumerate(depth):
        ahead = row[row > 0]
        if len(ahead):
            out[i] = np.quantile(ahead, _NEAR_QUANTILE)
    return None if np.isnan(out).any() else out


@dataclass
class Facing:
    """How a set of cameras stands towards its scene (:func:`camera_facing`).

    Attributes:
        cameras: how many; max_angle: the largest angle (degrees) between an optical axis and
            their mean direction.
        near: the nearest depth any camera sees (None when unknown: no bounds, no points).
        ahead: how far the most advanced camera stands in front of the mean camera centre, along
            the mean direction (scene units).
        forward: every axis within ``_FORWARD_MAX_ANGLE`` of the mean, every camera behind the NDC
            near plane (``NEAR_PLANE_FRACTION * near`` in front of the mean centre, with half of
            that to spare) and everything each camera sees beyond it.
    """

    cameras: int
    max_angle: float
    near: float | None
    ahead: float
    forward: bool

    def describe(self) -> str:
        """Why the capture is, or is not, forward-facing, in a few words."""
        cone = f"{self.cameras} cameras look within {self.max_angle:.0f} degrees of one direction"
        if self.forward:
            return f"{cone} and the scene lies in front of all of them (nearest depth {self.near:.3g})"
        if self.max_angle > _FORWARD_MAX_ANGLE:
            return f"{cone} (forward-facing needs at most {_FORWARD_MAX_ANGLE:.0f})"
        if self.near is None:
            return f"{cone} but no near bounds or points say how far the scene is"
        return f"{cone} but the scene does not lie in front of all of them"


def camera_facing(c2w: np.ndarray, near: np.ndarray | None = None) -> Facing:
    """Whether cameras ``[N, 3|4, 4]`` face forward (LLFF style), given the nearest depth each one
    sees (``near [N]``, along its own optical axis: LLFF's near bounds; None when unknown, which
    is never forward-facing)."""
    c2w = _as_c2w(c2w)
    origins, dirs = c2w[:, :, 3], -c2w[:, :, 2]
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    mean = dirs.mean(0)
    if np.linalg.norm(mean) < 1e-6:
        return Facing(len(c2w), 180.0, None, 0.0, False)
    mean /= np.linalg.norm(mean)
    cos = np.clip(dirs @ mean, -1.0, 1.0)
    max_angle = float(np.degrees(np.arccos(cos.min())))
    offset = (origins - origins.mean(0)) @ mean  # [N] how far ahead of the mean centre
    ahead = float(offset.max())
    if near is None or len(near) != len(c2w) or not np.all(np.isfinite(near)) or np.min(near) <= 0:
        return Facing(len(c2w), max_angle, None, ahead, False)
    near = np.asarray(near, np.float64)
    plane = NEAR_PLANE_FRACTION * float(near.min())
    forward = (max_angle <= _FORWARD_MAX_ANGLE and ahead <= 0.5 * plane
               and bool(np.all(offset + near * cos >= plane)))
    return Facing(len(c2w), max_angle, float(near.min()), ahead, forward)


def scene_kind(c2w: np.ndarray, points: np.ndarray | None = None, point_quantile: float = 0.98,
               near: np.ndarray | None = None) -> str:
    """``"forward"`` for forward-facing captures (:func:`camera_facing`), ``"object"`` when the
    cameras look inward at a region that holds the scene, else ``"unbounded"``.

    Args:
        c2w: ``[N, 3|4, 4]`` camera-to-world (OpenGL convention).
        points: optional ``[P, 3]`` sparse points; when their robust extent (quantile
            ``point_quantile`` of the distance to the focus) reaches far beyond the cameras, the
            scene has a background at large distances and is ``"unbounded"`` even if the cameras
            circle an object (the mip-NeRF 360 situation).
        near: optional ``[N]`` nearest depth each camera sees (LLFF's near bounds); without it the
            points give it (:func:`point_near_depths`).
    """
    c2w = _as_c2w(c2w)
    if camera_facing(c2w, near if near is not None else point_near_depths(c2w, points)).forward:
        return "forward"
    if not looks_inward(c2w):
        return "unbounded"
    if points is not None and len(points) > 0:
        focus = focus_point(c2w)
        cam_dist = np.median(np.linalg.norm(c2w[:, :, 3] - focus, axis=1))
        point_dist = np.quantile(np.linalg.norm(np.asarray(points, np.float64) - focus, axis=1), point_quantile)
        if point_dist > _FAR_POINTS * cam_dist:
            return "unbounded"
    return "object"


def robust_bounds(points: np.ndarray, point_quantile: float = 0.98) -> np.ndarray:
    """Per-axis quantiles ``1 - q`` and ``q`` of ``[P, 3]`` points: ``[2, 3]`` (min row, max row)."""
    q = min(max(point_quantile, 0.5), 1.0)
    return np.quantile(np.asarray(points, np.float64), [1 - q, q], axis=0)


def normalize_poses(c2w: np.ndarray, points: np.ndarray | None = None, box: float = 1.0, margin: float = 0.9,
                    point_quantile: float = 0.98) -> np.ndarray:
    """Similarity transform ``[4, 4]`` that makes +z the mean camera up and fits the scene in a box.

    Args:
        c2w: ``[N, 3, 4]`` or ``[N, 4, 4]`` camera-to-world matrices (OpenGL convention).
        points: optional ``[P, 3]`` sparse points (robust bounds are kept inside the box too).
        box: half-size of the target cube ``[-box, box]^3``.
        margin: fraction of ``box`` actually used, leaving room around the scene.
        point_quantile: per-axis quantile ``q`` of the robust point bounds (``1 - q`` .. ``q``).
    Returns:
        ``T = [[s R, t], [0, 0, 0, 1]]`` float64; apply it with :func:`apply_transform` and
        :func:`transform_points`. After it, cameras and robust point bounds lie in
        ``[-box * margin, box * margin]^3`` (see the module docstring for the centre choice).
    """
    c2w = _as_c2w(c2w)
    rot = rotation_between(c2w[:, :, 1].mean(0), np.array([0.0, 0.0, 1.0]))
    origins = c2w[:, :, 3] @ rot.T
    pts = None if points is None or len(points) == 0 else np.asarray(points, np.float64).reshape(-1, 3) @ rot.T
    bounds = robust_bounds(pts, point_quantile) if pts is not None else np.empty((0, 3))
    if looks_inward(c2w):
        centre = focus_point(c2w) @ rot.T
    else:
        extent = np.concatenate([origins, bounds])
        centre = 0.5 * (extent.min(0) + extent.max(0))
    reach = np.abs(np.concatenate([origins, bounds]) - centre).max()
    scale = box * margin / reach if reach > 1e-12 else 1.0
    transform = np.eye(4)
    transform[:3, :3] = scale * rot
    transform[:3, 3] = -scale * centre
    return transform


def normalize_forward(c2w: np.ndarray, near: float) -> np.ndarray:
    """Similarity transform ``[4, 4]`` of a forward-facing capture, as NeRF normalises LLFF scenes.

    The mean camera up becomes +z (as in :func:`normalize_poses`), the mean camera centre the
    origin, and the nearest depth the cameras see, ``near`` (scene units before the transform),
    becomes ``1 / NEAR_PLANE_FRACTION``: NDC's near plane then lies at depth 1.
    """
    c2w = _as_c2w(c2w)
    rot = rotation_between(c2w[:, :, 1].mean(0), np.array([0.0, 0.0, 1.0]))
    centre = c2w[:, :, 3].mean(0) @ rot.T
    scale = 1.0 / (NEAR_PLANE_FRACTION * float(near))
    transform = np.eye(4)
    transform[:3, :3] = scale * rot
    transform[:3, 3] = -scale * centre
    return transform


def _split(transform: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(s, R [3, 3], t [3])`` of a similarity transform ``[4, 4]``."""
    transform = np.asarray(transform, np.float64)
    scale = float(np.cbrt(np.linalg.det(transform[:3, :3])))
    return scale, transform[:3, :3] / scale, transform[:3, 3]


def apply_transform(c2w: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Move cameras ``[N, 3|4, 4]`` by a similarity ``[4, 4]``: ``[N, 4, 4]`` float64.

    The rotation columns stay orthonormal (scale moves the camera centres only), so the result is
    still a rigid camera-to-world matrix.
    """
    c2w = _as_c2w(c2w)
    scale, rot, t = _split(transform)
    out = np.zeros((len(c2w), 4, 4))
    out[:, :3, :3] = rot @ c2w[:, :, :3]
    out[:, :3, 3] = scale * c2w[:, :, 3] @ rot.T + t
    out[:, 3, 3] = 1.0
    return out


def transform_points(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Apply a transform ``[4, 4]`` to points ``[P, 3]``: ``[P, 3]`` float64."""
    transform = np.asarray(transform, np.float64)
    return np.asarray(points, np.float64).reshape(-1, 3) @ transform[:3, :3].T + transform[:3, 3]


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``[4, 4]`` mapping points ``src`` ``[P, 3]`` onto ``dst`` ``[P, 3]``.

    Umeyama (1991): the rotation comes from the SVD of the cross-covariance, with a sign fix so it
    is never a reflection. Used to compare camera sets that differ by a similarity.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[2, 2] = -1
    rot = u @ fix @ vt
    var_s = (xs**2).sum() / len(src)
    scale = float((sig * np.diag(fix)).sum() / var_s) if var_s > 0 else 1.0
    out = np.eye(4)
    out[:3, :3] = scale * rot
    out[:3, 3] = mu_d - scale * rot @ mu_s
    return out
